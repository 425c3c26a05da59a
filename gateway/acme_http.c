/* Requests to the ACME server, handed from the ACME thread to worker 0. See acme_http.h. */
#include "acme_http.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acme_fetch.h"
#include "tls_client.h"
#include "worker.h"

/* How long the waiter gives worker 0 beyond the request's own timeout, which worker 0 enforces:
 * only a worker too busy to take the job at all gets near it. */
#define HANDOFF_GRACE_MS 5000

struct gw_acme_http {
    gw_loop_t *loop; /* worker 0's */
    char *ca_file;
    uint32_t timeout_ms;
    pthread_mutex_t lock; /* guards the two below against the interrupting thread */
    gw_acme_job_t *current;
    bool stopped;
};

typedef struct url_parts {
    char host[256];
    uint16_t port;
    char authority[300];
    const char *path;
} url_parts_t;

gw_acme_http_t *gw_acme_http_new(struct gw_worker *w0, const char *ca_file, int timeout_ms, char *err,
                                 size_t errlen)
{
    const char *bad = gw_tls_client_check_ca(ca_file);
    if (bad) {
        snprintf(err, errlen, "%s: %s", ca_file ? ca_file : "the system store", bad);
        return NULL;
    }
    gw_acme_http_t *h = calloc(1, sizeof(*h));
    if (!h || (ca_file && !(h->ca_file = strdup(ca_file)))) {
        free(h);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->loop = w0->loop;
    h->timeout_ms = (uint32_t)timeout_ms;
    pthread_mutex_init(&h->lock, NULL);
    return h;
}

void gw_acme_http_free(gw_acme_http_t *h)
{
    if (!h) return;
    pthread_mutex_destroy(&h->lock);
    free(h->ca_file);
    free(h);
}

void gw_acme_http_interrupt(gw_acme_http_t *h)
{
    pthread_mutex_lock(&h->lock);
    h->stopped = true;
    if (h->current) {
        pthread_mutex_lock(&h->current->lock);
        h->current->interrupted = true;
        pthread_cond_signal(&h->current->cond);
        pthread_mutex_unlock(&h->current->lock);
    }
    pthread_mutex_unlock(&h->lock);
}

/* https://host[:port][/path], the host a name, an IPv4 address or a bracketed IPv6 address. */
static bool parse_url(const char *url, url_parts_t *u)
{
    if (strncmp(url, "https://", 8) != 0) return false;
    const char *host = url + 8, *end = host + strcspn(host, "/?#");
    u->path = *end == '/' ? end : "/";
    const char *hend = host[0] == '[' ? memchr(host, ']', (size_t)(end - host)) : NULL;
    const char *hstart = hend ? host + 1 : host;
    if (!hend) hend = memchr(host, ':', (size_t)(end - host));
    if (!hend) hend = end;
    size_t hl = (size_t)(hend - hstart);
    if (hl == 0 || hl >= sizeof(u->host)) return false;
    memcpy(u->host, hstart, hl);
    u->host[hl] = '\0';
    const char *colon = hend < end && *hend == ']' ? hend + 1 : hend;
    long port = 443;
    if (colon < end) {
        char *pend;
        if (*colon != ':') return false;
        port = strtol(colon + 1, &pend, 10);
        if (pend != end || port < 1 || port > 65535) return false;
    }
    u->port = (uint16_t)port;
    snprintf(u->authority, sizeof(u->authority), "%.*s", (int)(end - host), host);
    return true;
}

/* "METHOD path HTTP/1.1" with Host, and for a POST the JWS as application/jose+json. */
static char *build_request(const char *method, const url_parts_t *u, const char *body, size_t *len)
{
    size_t blen = body ? strlen(body) : 0, cap = strlen(u->path) + sizeof(u->authority) + blen + 256;
    char *req = malloc(cap);
    if (!req) return NULL;
    int n = snprintf(req, cap, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: gateway-acme\r\nAccept: */*\r\n",
                     method, u->path, u->authority);
    if (body)
        n += snprintf(req + n, cap - (size_t)n,
                      "Content-Type: application/jose+json\r\nContent-Length: %zu\r\n", blen);
    n += snprintf(req + n, cap - (size_t)n, "\r\n");
    memcpy(req + n, body ? body : "", blen);
    *len = (size_t)n + blen;
    return req;
}

static gw_acme_job_t *job_new(gw_acme_http_t *h, const char *method, const url_parts_t *u, const char *body)
{
    gw_acme_job_t *job = calloc(1, sizeof(*job));
    if (!job) return NULL;
    job->refs = 1; /* the waiter's */
    job->res.retry_after = -1;
    snprintf(job->host, sizeof(job->host), "%s", u->host);
    job->port = u->port;
    job->head = !strcmp(method, "HEAD");
    job->timeout_ms = h->timeout_ms;
    pthread_mutex_init(&job->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&job->cond, &ca);
    pthread_condattr_destroy(&ca);
    job->request = build_request(method, u, body, &job->request_len);
    job->ca_file = h->ca_file ? strdup(h->ca_file) : NULL;
    if (!job->request || (h->ca_file && !job->ca_file)) {
        gw_acme_job_release(job);
        return NULL;
    }
    return job;
}

void gw_acme_job_release(gw_acme_job_t *job)
{
    pthread_mutex_lock(&job->lock);
    bool last = --job->refs == 0;
    pthread_mutex_unlock(&job->lock);
    if (!last) return;
    pthread_mutex_destroy(&job->lock);
    pthread_cond_destroy(&job->cond);
    free(job->request);
    free(job->ca_file);
    gw_acme_response_free(&job->res);
    free(job);
}

void gw_acme_job_done(gw_acme_job_t *job)
{
    pthread_mutex_lock(&job->lock);
    job->done = true;
    pthread_cond_signal(&job->cond);
    pthread_mutex_unlock(&job->lock);
    gw_acme_job_release(job); /* worker 0's */
}

struct timespec gw_acme_deadline_in(uint32_t ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

/* Waits for worker 0's answer and takes it; without one (interrupted, or worker 0 never got to
 * it) worker 0 is told to drop the exchange. */
static bool await(gw_acme_http_t *h, gw_acme_job_t *job, gw_acme_response_t *res, char *err, size_t errlen)
{
    struct timespec until = gw_acme_deadline_in(job->timeout_ms + HANDOFF_GRACE_MS);
    bool ok = false;
    pthread_mutex_lock(&job->lock);
    int rc = 0;
    while (!job->done && !job->interrupted && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&job->cond, &job->lock, &until);
    if (job->done) {
        ok = job->ok;
        *res = job->res;
        job->res = (gw_acme_response_t){.retry_after = -1}; /* the body is the caller's now */
        if (!ok) snprintf(err, errlen, "%s", job->err);
    } else if (job->interrupted) {
        snprintf(err, errlen, "stopping");
    } else {
        snprintf(err, errlen, "no answer from worker 0 within %u ms", job->timeout_ms + HANDOFF_GRACE_MS);
    }
    bool abandoned = !job->done;
    pthread_mutex_unlock(&job->lock);
    if (abandoned) gw_acme_fetch_post_cancel(h->loop, job); /* it takes the job's lock */
    return ok;
}

bool gw_acme_http_request(gw_acme_http_t *h, const char *method, const char *url, const char *body,
                          gw_acme_response_t *res, char *err, size_t errlen)
{
    memset(res, 0, sizeof(*res));
    res->retry_after = -1;
    url_parts_t u;
    if (!parse_url(url, &u)) {
        snprintf(err, errlen, "not an https URL: %s", url);
        return false;
    }
    gw_acme_job_t *job = job_new(h, method, &u, body);
    if (!job) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    pthread_mutex_lock(&h->lock);
    bool stopped = h->stopped;
    if (!stopped) h->current = job;
    pthread_mutex_unlock(&h->lock);
    bool ok = false;
    if (stopped) {
        snprintf(err, errlen, "stopping");
    } else {
        gw_acme_fetch_post(h->loop, job);
        ok = await(h, job, res, err, errlen);
        pthread_mutex_lock(&h->lock);
        h->current = NULL;
        pthread_mutex_unlock(&h->lock);
    }
    gw_acme_job_release(job);
    return ok;
}

void gw_acme_response_free(gw_acme_response_t *res)
{
    free(res->body);
    res->body = NULL;
}

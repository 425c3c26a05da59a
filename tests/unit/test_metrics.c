/* Metrics: duration buckets at their bounds, host labels (stable across configs, bounded, escaped),
 * cache results, and a buffer too small for the exposition. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config.h"
#include "metrics.h"
#include "metrics_hosts.h"

static gw_config_t *load(const char *yaml)
{
    static char err[4096];
    gw_config_t *cfg = gw_config_load_string("t.yaml", yaml, err, sizeof(err), NULL, NULL);
    if (!cfg) fprintf(stderr, "%s\n", err);
    return cfg;
}

static void count(const gw_route_t *route, int status, uint64_t ms)
{
    gw_req_t req;
    memset(&req, 0, sizeof(req));
    req.route = route;
    req.res.status = status;
    req.version = 11;
    gw_metrics_count_request(&req, ms);
}

static char *render(gw_chunk_pool_t *pool, gw_arena_t *arena)
{
    static char buf[65536];
    gw_metrics_view_t v;
    gw_arena_init(arena, pool);
    CHECK(gw_metrics_collect(&v, arena));
    CHECK_EQ_INT(gw_metrics_render(&v, buf, 100), 0); /* too small: nothing half-written is served */
    size_t n = gw_metrics_render(&v, buf, sizeof(buf));
    CHECK(n > 0);
    buf[n] = '\0';
    return buf;
}

#define HAS(text, line) CHECK(strstr((text), (line)) != NULL)

int main(void)
{
    gw_config_t *cfg = load("global:\n  port: 8080\n  metricsMaxHosts: 3\n"
                            "hosts:\n  - domain: a.test\n  - domain: \"*.b.test\"\n"
                            "  - domain: 'q\"uote.test'\n  - domain: d.test\n");
    CHECK(cfg != NULL);
    if (!cfg) return check_report("metrics");
    gw_metrics_hosts_init(cfg);
    gw_metrics_hosts_assign(cfg);
    CHECK_EQ_INT(gw_metrics_hosts_capacity(), 5); /* default, 3 hosts, other */
    count(&cfg->hosts[0].route, 200, 0);
    count(&cfg->hosts[0].route, 200, 1);     /* le="0.001" holds 0 and 1 ms */
    count(&cfg->hosts[1].route, 404, 5);     /* le="0.005" */
    count(&cfg->hosts[2].route, 503, 6);     /* le="0.01" */
    count(&cfg->hosts[3].route, 200, 10001); /* beyond 10 s; a fourth host: "other" */
    count(&cfg->global_route, 0, 2);         /* no status, no host */

    /* a reload that reorders the hosts and adds one keeps every label's index */
    gw_config_t *next = load("global:\n  port: 8080\nhosts:\n  - domain: e.test\n  - domain: a.test\n");
    CHECK(next != NULL);
    if (next) {
        gw_metrics_hosts_assign(next);
        CHECK_EQ_INT(next->hosts[1].route.metrics_host, cfg->hosts[0].route.metrics_host);
        CHECK_EQ_INT(next->hosts[0].route.metrics_host, gw_metrics_hosts_capacity() - 1); /* full: other */
        count(&next->hosts[1].route, 200, 3);
    }

    gw_metrics_count_cache("HIT", "gateway; hit; ttl=10");
    gw_metrics_count_cache("HIT", "gateway; fwd=stale; fwd-status=304; ttl=10");
    gw_metrics_count_cache("MISS", "gateway; fwd=uri-miss; fwd-status=200; stored");
    gw_metrics_count_cache("BYPASS", "gateway; fwd=method");

    gw_chunk_pool_t pool;
    gw_chunk_pool_init(&pool, 8192, 0);
    gw_arena_t arena;
    char *text = render(&pool, &arena);
    HAS(text, "gateway_http_request_duration_seconds_bucket{le=\"0.001\"} 2\n");
    HAS(text, "gateway_http_request_duration_seconds_bucket{le=\"0.005\"} 5\n"); /* + 2, 3 and 5 ms */
    HAS(text, "gateway_http_request_duration_seconds_bucket{le=\"0.01\"} 6\n");
    HAS(text, "gateway_http_request_duration_seconds_bucket{le=\"10\"} 6\n");
    HAS(text, "gateway_http_request_duration_seconds_bucket{le=\"+Inf\"} 7\n");
    HAS(text, "gateway_http_request_duration_seconds_sum 10.018\n");
    HAS(text, "gateway_http_request_duration_seconds_count 7\n");
    HAS(text, "gateway_http_requests_by_host_total{host=\"a.test\",code=\"2xx\"} 3\n");
    HAS(text, "gateway_http_requests_by_host_total{host=\"*.b.test\",code=\"4xx\"} 1\n");
    HAS(text, "gateway_http_requests_by_host_total{host=\"q\\\"uote.test\",code=\"5xx\"} 1\n");
    HAS(text, "gateway_http_requests_by_host_total{host=\"other\",code=\"2xx\"} 1\n");
    HAS(text, "gateway_http_requests_by_host_total{host=\"default\",code=\"other\"} 1\n");
    CHECK(strstr(text, "host=\"d.test\"") == NULL && strstr(text, "host=\"e.test\"") == NULL);
    HAS(text, "gateway_cache_requests_total{result=\"hit\"} 1\n");
    HAS(text, "gateway_cache_requests_total{result=\"stale\"} 1\n");
    HAS(text, "gateway_cache_requests_total{result=\"miss\"} 1\n");
    HAS(text, "gateway_cache_requests_total{result=\"bypass\"} 1\n");
    gw_arena_reset(&arena);
    gw_chunk_pool_clear(&pool);
    if (next) gw_config_free(next);
    gw_config_free(cfg);
    return check_report("metrics");
}

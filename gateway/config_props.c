/* The property registry and type checks. See config_props.h. */
#include "config_props.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define G GW_SCOPE_GLOBAL
#define A GW_SCOPE_ANY
#define H GW_SCOPE_HOST
#define L GW_SCOPE_LOCATION
#define E GW_SCOPE_ERRORCONFIG
#define U GW_SCOPE_UPSTREAM
#define NOLIM 0, 0
#define I32 0, 2147483647

const gw_prop_def_t gw_props_registry[] = {
    /* listening, TLS, protocols */
    {"port", G, GW_PT_PORT, 0, 65535, "80", NULL, true, "HTTP listener: port on [::], \"address:port\" or \"unix:/path\""},
    {"sport", G, GW_PT_PORT, 0, 65535, "443", NULL, true, "HTTPS listener (with secure): port, \"address:port\" or \"unix:/path\""},
    {"secure", G, GW_PT_BOOL, NOLIM, "false", NULL, true, "enable the HTTPS listener"},
    {"disableNonEncryptedServer", G, GW_PT_BOOL, NOLIM, "false", NULL, true, "no HTTP listener when secure"},
    {"cert", G, GW_PT_STRING, NOLIM, NULL, NULL, true, "default certificate (PEM)"},
    {"key", G, GW_PT_STRING, NOLIM, NULL, NULL, true, "default private key (PEM)"},
    {"sni", G, GW_PT_MAP, NOLIM, NULL, NULL, true, "per-SNI certificates: host -> {cert, key, ocspResponseFile}"},
    {"enableHTTP2", G, GW_PT_BOOL, NOLIM, "true", NULL, true, "offer h2"},
    {"http2Settings", G, GW_PT_MAP, NOLIM, NULL, NULL, true,
     "HTTP/2 settings {initialWindowSize, maxFrameSize, maxConcurrentStreams, maxHeaderListSize,"
     " enableConnectProtocol}"},
    {"generateDevCertificate", G, GW_PT_BOOL, NOLIM, "false", NULL, true,
     "write a self-signed localhost certificate to cert/key when they are missing (development)"},
    {"ocspResponseFile", G, GW_PT_STRING, NOLIM, NULL, NULL, true,
     "DER OCSP response to staple (also per sni entry)"},
    {"enableHTTP3", G, GW_PT_BOOL, NOLIM, "false", NULL, false, "HTTP/3 over QUIC on the sport UDP port"},
    {"tlsMinVersion", G, GW_PT_STRING, NOLIM, "TLSv1.2", NULL, true, "lowest TLS version"},
    {"tlsMaxVersion", G, GW_PT_STRING, NOLIM, "TLSv1.3", NULL, true, "highest TLS version"},
    {"cipherSuite", G, GW_PT_STRING_LIST, NOLIM, NULL, NULL, true, "TLS cipher suites"},
    {"ecdhCurve", G, GW_PT_STRING_LIST, NOLIM, NULL, NULL, true, "key exchange groups"},
    {"useClientCertificate", G, GW_PT_BOOL, NOLIM, "false", NULL, true,
     "require client certificates signed by a CA of clientCertificateCaFile (default: the system trust store)"},
    {"clientCertificateCaFile", G, GW_PT_STRING, NOLIM, NULL, NULL, true,
     "PEM CA certificates that client certificates must chain to (with useClientCertificate)"},
    {"sessionTicketKeyRotation", G, GW_PT_INT, 1, 86400, "3600", NULL, true,
     "seconds between rotations of the in-process session-ticket keys (the previous key still decrypts one "
     "period); not used with sessionTicketKeyFiles"},
    {"sessionTicketKeyFiles", G, GW_PT_STRING_OR_LIST, NOLIM, NULL, NULL, true,
     "session-ticket key files shared by replicas (80 or 48 bytes each, as nginx): the first encrypts new "
     "tickets, all decrypt; rotate by replacing the files and reloading"},
    {"tlsSessionCacheSize", G, GW_PT_INT, 0, 1000000, "20480", NULL, true,
     "TLS 1.2 sessions kept for session-ID resumption, whole process (kept across reloads); 0: tickets only"},
    {"enableOCSPStapling", G, GW_PT_BOOL, NOLIM, "true", NULL, false, "staple OCSP responses"},
    {"enableAutomaticTLS", G, GW_PT_BOOL, NOLIM, "false", NULL, true,
     "certificates from an ACME CA (RFC 8555) for every non-wildcard host domain, renewed before expiry; "
     "secure: true needs no cert/key then"},
    {"useAutomaticTLSHTTPChallenge", G, GW_PT_BOOL, NOLIM, "false", NULL, true,
     "ACME: validate with HTTP-01 on the plain port instead of TLS-ALPN-01 on the HTTPS port"},
    {"automaticTLSContactEmail", G, GW_PT_STRING, NOLIM, NULL, NULL, true, "ACME: the account's contact e-mail"},
    {"automaticTLSContactCacheDirectory", G, GW_PT_STRING, NOLIM, NULL, NULL, true,
     "ACME: directory (created 0700) for the account key, the certificate and its key (files 0600); "
     "unset: kept in memory only"},
    {"automaticTLSLetsEncryptProduction", G, GW_PT_BOOL, NOLIM, "true", NULL, true,
     "ACME: Let's Encrypt production (true) or staging (false), unless automaticTLSDirectory is set"},
    {"automaticTLSDirectory", G, GW_PT_STRING, NOLIM, NULL, NULL, true,
     "ACME: directory URL of the CA (https://...); default: Let's Encrypt, see automaticTLSLetsEncryptProduction"},
    {"automaticTLSCaFile", G, GW_PT_STRING, NOLIM, NULL, NULL, true,
     "ACME: PEM CA certificates trusted for the CA's own HTTPS server (default: the system store)"},
    {"automaticTLSRenewBefore", G, GW_PT_INT, 1, 31536000, "2592000", NULL, true,
     "ACME: seconds before expiry a certificate is renewed (half its remaining life when that is shorter)"},
    {"automaticTLSRetryMax", G, GW_PT_INT, 1, 86400, "3600", NULL, true,
     "ACME: longest back-off in seconds between failed attempts (from 2 s, doubling; Retry-After honoured)"},
    {"automaticTLSTimeout", G, GW_PT_INT, 100, 600000, "10000", NULL, true,
     "ACME: ms one request to the CA may take, all told (resolving, connecting, TLS, the answer)"},
    {"automaticTLSValidationTimeout", G, GW_PT_INT, 1, 3600, "60", NULL, true,
     "ACME: seconds to wait for the CA to validate a challenge or issue an order (polled every 0.5 s)"},
    /* process, logs, modules */
    {"loadModules", G, GW_PT_STRING_LIST, NOLIM, NULL, NULL, true, "modules to load, in handler order"},
    {"logFilePath", G, GW_PT_STRING, NOLIM, NULL, NULL, true, "access log (Combined Log Format)"},
    {"logFormat", G, GW_PT_STRING, NOLIM, "combined", NULL, true,
     "access log: combined, extended (combined + host, time, request id, cache, TLS) or json"},
    {"requestId", G, GW_PT_BOOL, NOLIM, "false", NULL, true,
     "X-Request-ID: kept when the client sent a sane one, else generated; sent to backends and clients, logged"},
    {"errorLogFilePath", G, GW_PT_STRING, NOLIM, NULL, NULL, true, "error log (default: standard error)"},
    {"timeout", G, GW_PT_INT_OR_NULL, 0, 2147483647, "300000", NULL, true, "ms to handle a whole request; null: none"},
    {"environmentVariables", G, GW_PT_STRING_MAP, NOLIM, NULL, NULL, true,
     "environment variables: the process's, set at start; CGI programs get those of their config"},
    {"blocklist", A, GW_PT_STRING_LIST, NOLIM, NULL, NULL, true, "client IPs/CIDRs refused with 403 (any level)"},
    {"loadBalancerHealthCheckWindow", G, GW_PT_INT, I32, "5000", "rproxy", true,
     "ms a backend's failures are counted for passive health"},
    {"maximumCacheEntries", G, GW_PT_INT_OR_NULL, I32, NULL, "cache", true, "cache entry limit (CLOCK eviction)"},
    {"maximumCacheMemory", G, GW_PT_INT, 0, INT64_MAX, "268435456", "cache", true, "bytes the response cache may hold; 0: no bound"},
    {"wsgiClearModuleImportPath", G, GW_PT_BOOL, NOLIM, "false", "wsgi", false,
     "WSGI: clear Python's module import path"},
    {"asgiClearModuleImportPath", G, GW_PT_BOOL, NOLIM, "false", "asgi", false,
     "ASGI: clear Python's module import path"},
    /* our own global properties */
    {"proxyConnectTimeout", G, GW_PT_INT, 1, 3600000, "10000", NULL, true, "ms to connect to a backend (504)"},
    {"proxyReadTimeout", A, GW_PT_INT, 1, 86400000, "60000", NULL, true, "ms a backend may stay silent (504)"},
    {"proxyKeepaliveConnections", G, GW_PT_INT, 0, 100000, "32", NULL, true, "idle backend connections per target"},
    {"proxyCaFile", G, GW_PT_STRING, NOLIM, NULL, NULL, true, "CA bundle (PEM) for https:// backends"},
    {"proxyBackoffMax", G, GW_PT_INT, 0, 600000, "10000", NULL, true, "longest ms a refusing backend is paused; 0: off"},
    {"proxyKeepaliveTimeout", G, GW_PT_INT, 1, 3600000, "30000", NULL, true, "ms an idle backend connection is kept"},
    {"proxyHttp2MaxConcurrentStreams", G, GW_PT_INT, 1, 1000, "100", NULL, true,
     "streams per HTTP/2 backend session (fewer when the backend says so); more sessions are opened beyond"},
    {"proxyHttp2WindowSize", G, GW_PT_INT, 16384, 16777215, "65535", NULL, true,
     "bytes of a response an HTTP/2 backend may send ahead of a slow client, per stream (buffered)"},
    {"proxyHttp2PingInterval", G, GW_PT_INT, 0, 3600000, "10000", NULL, true,
     "ms between PINGs on an idle HTTP/2 backend session; one unanswered by the next closes it; 0: off"},
    {"proxyBufferSize", G, GW_PT_INT, 16384, 67108864, "262144", NULL, true,
     "largest read buffer of an HTTP/1.1, FastCGI or SCGI backend response, in bytes: sized from its "
     "Content-Length or the target's recent responses, held only while it is read and sent"},
    {"resolver", G, GW_PT_STRING_OR_LIST, NOLIM, "/etc/resolv.conf", NULL, true, "DNS servers for backend names: \"ip[:port]\""},
    {"dnsMinTtl", G, GW_PT_INT, 0, 86400000, "1000", NULL, true, "ms a DNS answer is cached at least"},
    {"dnsMaxTtl", G, GW_PT_INT, 0, 86400000, "3600000", NULL, true, "ms a DNS answer is cached at most"},
    {"dnsNegativeTtl", G, GW_PT_INT, 0, 3600000, "5000", NULL, true, "ms a failed DNS lookup is cached"},
    {"dnsStaleTime", G, GW_PT_INT, 0, 86400000, "60000", NULL, true, "ms an expired answer is used while the resolver fails"},
    {"dnsTimeout", G, GW_PT_INT, 1, 60000, "1000", NULL, true, "ms of the first DNS try (doubled on each retry)"},
    {"dnsTries", G, GW_PT_INT, 1, 10, "2", NULL, true, "DNS tries per server"},
    {"dnsCacheEntries", G, GW_PT_INT, 1, 1000000, "1024", NULL, true, "cached DNS names per worker"},
    {"modulesDir", G, GW_PT_STRING, NOLIM, "modules/ beside the binary", NULL, true, "where <name>.so modules are"},
    {"workers", G, GW_PT_INT, 0, 256, "0", NULL, true, "worker threads; 0: one per core (a reload keeps the running count)"},
    {"user", G, GW_PT_STRING, NOLIM, NULL, NULL, true, "user to serve as once the listeners are bound (when started as root)"},
    {"group", G, GW_PT_STRING, NOLIM, NULL, NULL, true, "group to serve as (default: the user's primary group)"},
    {"maxConnections", G, GW_PT_INT, 1, 1000000, "16384", NULL, true, "client connections, whole process"},
    {"maxRequestHeaderBytes", G, GW_PT_INT, 1024, 1048576, "16384", NULL, true, "request line + headers"},
    {"maxRequestHeaders", G, GW_PT_INT, 1, 1000, "100", NULL, true, "request header fields"},
    {"maxRequestTargetBytes", G, GW_PT_INT, 16, 1048576, "8192", NULL, true, "request target length (414)"},
    {"headerReadTimeout", G, GW_PT_INT, 100, 3600000, "30000", NULL, true, "ms to receive a request head"},
    {"keepaliveTimeout", G, GW_PT_INT, 0, 3600000, "60000", NULL, true, "ms an idle connection is kept"},
    {"sendTimeout", G, GW_PT_INT, 100, 3600000, "60000", NULL, true, "ms a client may stop reading"},
    {"gracefulShutdownTimeout", G, GW_PT_INT, 0, 3600000, "30000", NULL, true, "ms to drain on SIGTERM"},
    {"upgradeTimeout", G, GW_PT_INT, 100, 3600000, "30000", NULL, true,
     "ms a binary upgrade (SIGUSR2) waits for the new process to serve; then it is killed and the running "
     "process goes on serving"},
    {"gracefulIdleTimeout", G, GW_PT_INT, 0, 3600000, "1000", NULL, true,
     "ms an idle HTTP/1.1 keep-alive connection stays open once a stop begins, so that a request already on its "
     "way is answered (with Connection: close) instead of meeting a closed connection; 0: closed at once"},
    {"healthPath", G, GW_PT_STRING, NOLIM, "/healthz", NULL, true,
     "liveness endpoint answered before any route (200); null: off"},
    {"readyPath", G, GW_PT_STRING, NOLIM, "/readyz", NULL, true,
     "readiness endpoint: 200, or 503 while draining for a stop; null: off"},
    {"metricsPath", G, GW_PT_STRING, NOLIM, NULL, NULL, true,
     "Prometheus metrics endpoint (e.g. /metrics); default: off"},
    {"metricsMaxHosts", G, GW_PT_INT, 1, 4096, "100", NULL, true,
     "host labels of gateway_http_requests_by_host_total (each host's domain, kept across reloads); hosts "
     "beyond them count as \"other\"; takes effect at start"},
    {"adminListen", G, GW_PT_PORT, 0, 65535, NULL, NULL, true,
     "a listener of its own for the health, readiness and metrics endpoints (port, \"address:port\" or "
     "\"unix:/path\"; plain HTTP, no PROXY protocol); when set, the public listeners no longer answer them; "
     "default: off"},
    {"adminAllow", G, GW_PT_STRING_LIST, NOLIM, "127.0.0.0/8, ::1", NULL, true,
     "client IPs/CIDRs that see the health, readiness and metrics endpoints (peer address)"},
    {"proxyProtocol", G, GW_PT_BOOL, NOLIM, "false", NULL, true,
     "PROXY protocol (v1, v2) on TCP listeners: peers in proxyProtocolTrusted must send a header first, "
     "whose source address becomes the client's (logs, access rules, X-Forwarded-For, rate limits); other "
     "peers must not; either breach closes the connection"},
    {"proxyProtocolTrusted", G, GW_PT_STRING_LIST, NOLIM, NULL, NULL, true,
     "IPs/CIDRs of the load balancers that send PROXY headers (required with proxyProtocol)"},
    {"proxyProtocolMaxBytes", G, GW_PT_INT, 108, 4096, "512", NULL, true,
     "longest PROXY header accepted (v2 with TLVs; a v1 line is at most 107); longer: connection closed"},
    {"proxyProtocolToBackend", A, GW_PT_STRING, NOLIM, "off", NULL, true,
     "v1 or v2: a PROXY header with the client's address first on each new backend connection (every "
     "upstream type); such connections serve one client and are never pooled"},
    {"openFileCacheEntries", G, GW_PT_INT, 0, 1000000, "256", NULL, true, "cached open files per worker; 0: off"},
    {"openFileCacheInlineBytes", G, GW_PT_INT, 0, 1048576, "16384", NULL, true, "files this small kept in memory"},
    {"openFileCacheValidity", G, GW_PT_INT, 0, 3600000, "1000", NULL, true, "ms before a cached file is re-checked"},
    {"compressionCacheMaxBytes", G, GW_PT_INT, 0, INT32_MAX, "16777216", NULL, true,
     "bytes of on-the-fly compressed static files kept per worker for the next requests; 0: none"},
    {"maxRequestBodyBytes", A, GW_PT_INT, 0, INT64_MAX, "10485760", NULL, true, "request body size (413)"},
    {"requestBufferMemory", A, GW_PT_INT, 0, 1073741824, "65536", NULL, true,
     "bytes of a body of unknown length kept in memory while it is read ahead (FastCGI, SCGI, CGI); more goes to a temporary file"},
    {"requestBufferDirectory", A, GW_PT_STRING, NOLIM, "/tmp", NULL, true,
     "directory for the temporary files of bodies read ahead"},
    /* host scope */
    {"domain", H, GW_PT_STRING, NOLIM, NULL, NULL, true, "host name to match (\"*.example.com\" ok)"},
    {"ip", H, GW_PT_STRING, NOLIM, NULL, NULL, true, "local address to match"},
    {"locations", H, GW_PT_MAP_LIST, NOLIM, NULL, NULL, true, "path-prefixed overrides"},
    {"errorConfig", H, GW_PT_MAP_LIST, NOLIM, NULL, NULL, true, "overrides when a handler fails"},
    {"path", L, GW_PT_STRING, NOLIM, NULL, NULL, true, "location path prefix"},
    {"scode", E, GW_PT_INT, 100, 999, NULL, NULL, true, "status code of an errorConfig entry"},
    {"serverAdministratorEmail", A, GW_PT_STRING, NOLIM, NULL, NULL, true, "shown on 500 pages"},
    {"customHeaders", A, GW_PT_STRING_MAP, NOLIM, NULL, NULL, true, "headers added to responses when absent; {path}"},
    {"disableToHTTPSRedirect", A, GW_PT_BOOL, NOLIM, "false", NULL, true, "no redirect to HTTPS"},
    {"wwwredirect", A, GW_PT_BOOL, NOLIM, "false", NULL, true, "redirect to www."},
    {"enableIPSpoofing", A, GW_PT_BOOL, NOLIM, "false", NULL, true, "trust X-Forwarded-For from anyone (first)"},
    {"allowDoubleSlashes", A, GW_PT_BOOL, NOLIM, "false", NULL, true, "keep // in paths"},
    {"rewriteMap", A, GW_PT_MAP_LIST, NOLIM, NULL, NULL, true,
     "URL rewrites: [{regex, replacement, isNotFile, isNotDirectory, allowDoubleSlashes, last}]"},
    {"enableRewriteLogging", A, GW_PT_BOOL, NOLIM, "false", NULL, true, "log rewrites"},
    {"disableTrailingSlashRedirects", A, GW_PT_BOOL, NOLIM, "false", NULL, true,
     "no 301 adding / to directory URLs"},
    {"users", A, GW_PT_MAP_LIST, NOLIM, NULL, NULL, true, "basic-auth users {name, pass} (password hashes)"},
    {"nonStandardCodes", A, GW_PT_MAP_LIST, NOLIM, NULL, NULL, true,
     "per-path rules {scode, url or regex, location, realm, userList, users}: redirects, codes, basic auth"},
    /* policy: our own */
    {"allowlist", A, GW_PT_STRING_LIST, NOLIM, NULL, NULL, true, "only these client IPs/CIDRs (else 403)"},
    {"trustedProxies", A, GW_PT_STRING_LIST, NOLIM, NULL, NULL, true, "peers whose X-Forwarded-For is believed"},
    {"htpasswdFile", A, GW_PT_STRING_OR_LIST, NOLIM, NULL, NULL, true, "basic-auth users from htpasswd file(s)"},
    {"rateLimit", A, GW_PT_MAP, NOLIM, NULL, NULL, true,
     "token bucket {requests, per, burst, key: ip|user|header:N, zone}"},
    {"bruteForceMaxClients", G, GW_PT_INT, 64, 16777216, "65536", NULL, true,
     "client addresses whose failed basic-auth logins are counted for the brute-force lockout, whole process "
     "(32 bytes each; kept across reloads; the oldest are forgotten when full); takes effect at start"},
    {"errorPages", A, GW_PT_MAP_LIST, NOLIM, NULL, NULL, true, "custom error pages {scode, path}"},
    {"wwwroot", A, GW_PT_STRING, NOLIM, NULL, NULL, true, "static file root"},
    {"enableETag", A, GW_PT_BOOL, NOLIM, "true", NULL, true, "strong ETags"},
    {"enableCompression", A, GW_PT_BOOL, NOLIM, "true", NULL, true, "gzip/brotli, and file.br/file.gz siblings"},
    {"enableDirectoryListing", A, GW_PT_BOOL, NOLIM, "false", NULL, true, "generated index pages"},
    /* our own response properties */
    {"serverHeader", A, GW_PT_STRING, NOLIM, "gateway", NULL, true, "Server header value; \"\": none"},
    {"setResponseHeaders", A, GW_PT_STRING_MAP, NOLIM, NULL, NULL, true, "response headers set (replaced); {path}"},
    {"addResponseHeaders", A, GW_PT_STRING_MAP, NOLIM, NULL, NULL, true, "response headers appended; {path}"},
    {"removeResponseHeaders", A, GW_PT_STRING_LIST, NOLIM, NULL, NULL, true, "response headers removed"},
    {"hstsMaxAge", A, GW_PT_INT, 0, INT32_MAX, "0", NULL, true, "Strict-Transport-Security max-age on TLS; 0: none"},
    {"hstsIncludeSubDomains", A, GW_PT_BOOL, NOLIM, "false", NULL, true, "HSTS includeSubDomains"},
    {"hstsPreload", A, GW_PT_BOOL, NOLIM, "false", NULL, true, "HSTS preload"},
    {"compressionMinBytes", A, GW_PT_INT, 0, INT32_MAX, "256", NULL, true, "smallest known-length body compressed"},
    {"proxyTo", A, GW_PT_STRING_OR_LIST, NOLIM, NULL, "rproxy", true, "backend URL(s)"},
    {"secureProxyTo", A, GW_PT_STRING_OR_LIST, NOLIM, NULL, "rproxy", true, "backends for TLS clients"},
    {"enableLoadBalancerHealthCheck", A, GW_PT_BOOL, NOLIM, "false", "rproxy", true,
     "passive health checks: skip a backend that keeps failing"},
    {"loadBalancerHealthCheckMaximumFails", A, GW_PT_INT, I32, "3", "rproxy", true,
     "failures within the window before a backend is skipped"},
    {"disableProxyCertificateVerification", A, GW_PT_BOOL, NOLIM, "false", "rproxy", true,
     "do not verify the certificates of https:// backends"},
    {"proxyInterceptErrors", A, GW_PT_BOOL, NOLIM, "false", "rproxy", true, "own error pages for >=400"},
    {"proxyKeepHost", A, GW_PT_BOOL, NOLIM, "false", "rproxy", true, "send the client's Host to the backend"},
    {"proxySetRequestHeaders", A, GW_PT_STRING_MAP, NOLIM, NULL, "rproxy", true, "headers set on backend requests"},
    {"proxyRemoveRequestHeaders", A, GW_PT_STRING_LIST, NOLIM, NULL, "rproxy", true, "headers not sent to backends"},
    {"proxySetResponseHeaders", A, GW_PT_STRING_MAP, NOLIM, NULL, "rproxy", true, "headers set on proxied responses"},
    {"proxyRemoveResponseHeaders", A, GW_PT_STRING_LIST, NOLIM, NULL, "rproxy", true, "headers dropped from responses"},
    {"disableProxyXForwarded", A, GW_PT_BOOL, NOLIM, "false", "rproxy", true, "no X-Forwarded-*"},
    {"cacheVaryHeaders", A, GW_PT_STRING_LIST, NOLIM, NULL, "cache", true,
     "request headers added to the cache key"},
    {"cacheIgnoreHeaders", A, GW_PT_STRING_LIST, NOLIM, NULL, "cache", true,
     "response headers not stored in the cache"},
    {"cacheTargetedHeader", A, GW_PT_STRING_OR_LIST, NOLIM, NULL, "cache", true,
     "targeted cache-control fields (RFC 9213), e.g. CDN-Cache-Control: the first one a response carries with "
     "a valid value replaces its Cache-Control and Expires for this cache; not passed on to clients"},
    {"maximumCacheResponseSize", A, GW_PT_INT_OR_NULL, I32, NULL, "cache", true,
     "largest response body cached (bytes); null: no limit"},
    {"maximumCachedResponseSize", A, GW_PT_INT_OR_NULL, I32, NULL, "cache", true, "Ferron's spelling of maximumCacheResponseSize"},
    {"cgiScriptExtensions", A, GW_PT_STRING_LIST, NOLIM, NULL, "cgi", true,
     "file extensions run as CGI outside /cgi-bin/"},
    {"cgiScriptInterpreters", A, GW_PT_MAP, NOLIM, NULL, "cgi", true, "extension -> interpreter argv"},
    {"cgiMaxProcesses", G, GW_PT_INT, 1, 100000, "64", "cgi", true, "CGI programs running at once (503 above)"},
    {"scgiTo", A, GW_PT_STRING, NOLIM, "tcp://localhost:4000/", "scgi", true,
     "SCGI backend: tcp://host:port/ or unix:///path"},
    {"scgiPath", A, GW_PT_STRING, NOLIM, NULL, "scgi", true, "URL prefix for SCGI"},
    {"fcgiScriptExtensions", A, GW_PT_STRING_LIST, NOLIM, NULL, "fcgi", true,
     "file extensions under wwwroot sent to FastCGI"},
    {"fcgiTo", A, GW_PT_STRING, NOLIM, "tcp://localhost:4000/", "fcgi", true,
     "FastCGI backend: tcp://host:port/ or unix:///path"},
    {"fcgiPath", A, GW_PT_STRING, NOLIM, NULL, "fcgi", true, "URL prefix for FastCGI"},
    {"forwardProxyAllow", A, GW_PT_STRING_LIST, NOLIM, NULL, "fproxy", true,
     "only these destinations: host patterns (*.example.com) and IPs/CIDRs; private ranges need a CIDR here"},
    {"forwardProxyDeny", A, GW_PT_STRING_LIST, NOLIM, NULL, "fproxy", true,
     "destinations refused (403): host patterns and IPs/CIDRs, checked on the resolved address too"},
    {"forwardProxyAuth", A, GW_PT_BOOL, NOLIM, "false", "fproxy", true,
     "require Proxy-Authorization Basic from the route's users (407 otherwise)"},
    {"forwardProxyPorts", A, GW_PT_LIST, NOLIM, "[80, 443]", "fproxy", true, "destination ports of the forward proxy"},
    {"forwardProxyIdleTimeout", A, GW_PT_INT, 1, 86400000, "300000", "fproxy", true,
     "ms a CONNECT tunnel may carry no byte either way before it is closed"},
    {"authTo", A, GW_PT_STRING, NOLIM, NULL, "fauth", true, "forward-auth server URL"},
    {"forwardedAuthCopyHeaders", A, GW_PT_STRING_LIST, NOLIM, NULL, "fauth", true, "headers copied on 2xx"},
    {"wsgiApplicationPath", A, GW_PT_STRING, NOLIM, NULL, "wsgi", false, "WSGI application file"},
    {"wsgiPath", A, GW_PT_STRING, NOLIM, NULL, "wsgi", false, "URL prefix of the WSGI application"},
    {"wsgidApplicationPath", A, GW_PT_STRING, NOLIM, NULL, "wsgid", false,
     "WSGI application file (pre-forked processes)"},
    {"wsgidPath", A, GW_PT_STRING, NOLIM, NULL, "wsgid", false, "URL prefix of the wsgid application"},
    {"asgiApplicationPath", A, GW_PT_STRING, NOLIM, NULL, "asgi", false, "ASGI application file"},
    {"asgiPath", A, GW_PT_STRING, NOLIM, NULL, "asgi", false, "URL prefix of the ASGI application"},
    /* inside a named group of the top-level `upstreams:` map (config.c, health_config.c) */
    {"protocol", U, GW_PT_STRING, NOLIM, "http1", NULL, true,
     "what the group's servers speak: http1, h2 (https:// URLs, ALPN h2), h2c (http:// URLs, prior knowledge) "
     "or auto (https:// URLs, h2 or http/1.1 as each server's ALPN answer says)"},
    {"healthCheck", U, GW_PT_MAP, NOLIM, NULL, NULL, true,
     "active health checks of the group's servers: {path, interval, timeout, expectedStatus, fails, passes, host}"},
    {"healthCheck.path", U, GW_PT_STRING, NOLIM, NULL, NULL, true, "path probed with GET (required), e.g. /healthz"},
    {"healthCheck.interval", U, GW_PT_INT, 10, 3600000, "5000", NULL, true, "ms from the end of a probe to the next"},
    {"healthCheck.timeout", U, GW_PT_INT, 10, 600000, "2000", NULL, true,
     "ms a probe may take to connect and receive the response head; longer counts as a failure"},
    {"healthCheck.expectedStatus", U, GW_PT_STRING_OR_LIST, NOLIM, "any 2xx", NULL, true,
     "status code, or list of codes, of a healthy answer"},
    {"healthCheck.fails", U, GW_PT_INT, 1, 1000, "2", NULL, true, "failed probes in a row that mark a server down"},
    {"healthCheck.passes", U, GW_PT_INT, 1, 1000, "1", NULL, true, "good probes in a row that mark it up again"},
    {"healthCheck.host", U, GW_PT_STRING, NOLIM, NULL, NULL, true, "Host header of the probes (default: the server's)"},
};
const size_t gw_prop_count = sizeof(gw_props_registry) / sizeof(gw_props_registry[0]);

const char *gw_prop_type_name(gw_ptype_t type)
{
    static const char *const names[] = {
        [GW_PT_BOOL] = "bool",
        [GW_PT_INT] = "int",
        [GW_PT_INT_OR_NULL] = "int|null",
        [GW_PT_STRING] = "string",
        [GW_PT_PORT] = "port|address",
        [GW_PT_STRING_LIST] = "list<string>",
        [GW_PT_STRING_OR_LIST] = "string|list",
        [GW_PT_STRING_MAP] = "map<string>",
        [GW_PT_MAP] = "map",
        [GW_PT_MAP_LIST] = "list<map>",
        [GW_PT_LIST] = "list",
    };
    return (size_t)type < sizeof(names) / sizeof(names[0]) && names[type] ? names[type] : "?";
}

const gw_prop_def_t *gw_prop_find(const char *name)
{
    for (size_t i = 0; i < gw_prop_count; i++)
        if (strcmp(gw_props_registry[i].name, name) == 0) return &gw_props_registry[i];
    return NULL;
}

/* Case-insensitive Levenshtein distance of two short names (longer ones are never close). */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return 64;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++) row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = (a[i - 1] | 0x20) == (b[j - 1] | 0x20) ? 0 : 1;
            size_t best = diag + cost;
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const char *gw_prop_suggest(const char *name)
{
    const char *best = NULL;
    size_t best_d = 4;
    for (size_t i = 0; i < gw_prop_count; i++) {
        size_t d = edit_distance(name, gw_props_registry[i].name);
        if (d < best_d) {
            best_d = d;
            best = gw_props_registry[i].name;
        }
    }
    return best;
}

bool gw_node_as_bool(const gw_node_t *n, bool *out)
{
    if (!n || n->kind != GW_NODE_SCALAR || n->scalar.quoted) return false;
    if (strcasecmp(n->scalar.text, "true") == 0) {
        *out = true;
        return true;
    }
    if (strcasecmp(n->scalar.text, "false") == 0) {
        *out = false;
        return true;
    }
    return false;
}

bool gw_node_as_int(const gw_node_t *n, int64_t *out)
{
    if (!n || n->kind != GW_NODE_SCALAR || n->scalar.quoted || n->scalar.len == 0) return false;
    const char *s = n->scalar.text;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || (*s != '-' && (*s < '0' || *s > '9'))) return false;
    *out = v;
    return true;
}

const char *gw_node_as_string(const gw_node_t *n)
{
    if (!n || n->kind != GW_NODE_SCALAR || gw_yaml_is_null(n)) return NULL;
    return n->scalar.text;
}

static bool check_int(const gw_prop_def_t *def, const gw_node_t *v, char *why, size_t len)
{
    int64_t x;
    if (!gw_node_as_int(v, &x)) {
        snprintf(why, len, "expected an integer");
        return false;
    }
    if ((def->min || def->max) && (x < def->min || x > def->max)) {
        snprintf(why, len, "%lld is out of range (%lld to %lld)", (long long)x, (long long)def->min,
                 (long long)def->max);
        return false;
    }
    return true;
}

static bool all_items(const gw_node_t *v, gw_node_kind_t kind)
{
    for (size_t i = 0; i < v->seq.count; i++)
        if (v->seq.items[i]->kind != kind) return false;
    return true;
}

static bool check_list(const gw_prop_def_t *def, const gw_node_t *v, char *why, size_t len)
{
    if (v->kind != GW_NODE_SEQ) {
        snprintf(why, len, "expected a list");
        return false;
    }
    if (def->type == GW_PT_STRING_LIST && !all_items(v, GW_NODE_SCALAR)) {
        snprintf(why, len, "expected a list of strings");
        return false;
    }
    if (def->type == GW_PT_MAP_LIST && !all_items(v, GW_NODE_MAP)) {
        snprintf(why, len, "expected a list of maps");
        return false;
    }
    return true;
}

static bool check_map(const gw_prop_def_t *def, const gw_node_t *v, char *why, size_t len)
{
    if (v->kind != GW_NODE_MAP) {
        snprintf(why, len, "expected a map");
        return false;
    }
    if (def->type == GW_PT_STRING_MAP)
        for (size_t i = 0; i < v->map.count; i++)
            if (v->map.entries[i].value->kind != GW_NODE_SCALAR) {
                snprintf(why, len, "expected a map of strings");
                return false;
            }
    return true;
}

static bool check_scalar(const gw_prop_def_t *def, const gw_node_t *v, char *why, size_t len)
{
    bool b;
    switch (def->type) {
    case GW_PT_BOOL:
        if (gw_node_as_bool(v, &b)) return true;
        snprintf(why, len, "expected a boolean (true or false)");
        return false;
    case GW_PT_INT:
        return check_int(def, v, why, len);
    case GW_PT_INT_OR_NULL:
        return gw_yaml_is_null(v) || check_int(def, v, why, len);
    case GW_PT_PORT: /* a number, or an "address:port" string checked when listeners are built */
        return !gw_node_as_int(v, &(int64_t){0}) || check_int(def, v, why, len);
    case GW_PT_STRING:
    case GW_PT_STRING_OR_LIST:
        if (v->kind == GW_NODE_SCALAR) return true;
        snprintf(why, len, "expected a string");
        return false;
    default:
        return true;
    }
}

bool gw_prop_check(const gw_prop_def_t *def, const gw_node_t *v, char *why, size_t whylen)
{
    switch (def->type) {
    case GW_PT_STRING_LIST:
    case GW_PT_MAP_LIST:
    case GW_PT_LIST:
        return check_list(def, v, why, whylen);
    case GW_PT_STRING_MAP:
    case GW_PT_MAP:
        return check_map(def, v, why, whylen);
    case GW_PT_STRING_OR_LIST:
        if (v->kind == GW_NODE_SEQ) return check_list(&(gw_prop_def_t){.type = GW_PT_STRING_LIST}, v, why, whylen);
        break;
    default:
        break;
    }
    if (v->kind != GW_NODE_SCALAR) {
        snprintf(why, whylen, "expected a single value, not a %s", v->kind == GW_NODE_MAP ? "map" : "list");
        return false;
    }
    return check_scalar(def, v, why, whylen);
}

void gw_config_error_vappend(char *buf, size_t cap, size_t *used, const gw_node_t *at, const char *fallback_file,
                             const char *prefix, const char *fmt, va_list ap)
{
    if (!buf || *used + 1 >= cap) return;
    char *p = buf + *used;
    size_t room = cap - *used;
    int n = 0;
    if (at)
        n = snprintf(p, room, "%s:%d:%d: %s: ", at->file, at->line, at->column, prefix);
    else if (fallback_file)
        n = snprintf(p, room, "%s: %s: ", fallback_file, prefix);
    if (n >= 0 && (size_t)n < room) {
        int m = vsnprintf(p + n, room - (size_t)n, fmt, ap);
        if (m > 0) n += m;
    }
    *used += n > 0 && (size_t)n < room ? (size_t)n : room - 1;
    if (*used + 1 < cap) buf[(*used)++] = '\n';
    buf[*used] = '\0';
}

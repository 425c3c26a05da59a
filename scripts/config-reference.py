#!/usr/bin/env python3
"""Writes docs/configuration.md from the property registry, as `gateway --help` prints it.

    scripts/config-reference.py [--check] [path/to/gateway]   (default: build/gateway)

The registry gives each property's name, scope, module, type, range, default and meaning; this
script adds the grouping and one example per property (GROUPS below). It refuses to write the file
when a registry property has no group and example here, or a group names a property the binary does
not know, so the reference cannot fall behind the code. tests/integration/test_docs.py checks that
the committed file is what this script writes and loads every example with `gateway -t`.
"""
import argparse
import re
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
SCOPES = {"G": "global", "A": "any", "H": "host", "L": "location", "E": "errorConfig", "U": "upstream group"}
DEFAULT = re.compile(r"^(.*?)(?: \(default ([^:].*)\))?$")
NOT_YET = " (not supported yet)"


def properties(binary):
    """[(name, scope letter, module or None, type, meaning, default or None, supported)] in registry order."""
    out = subprocess.run([binary, "--help"], capture_output=True, text=True, check=True).stdout
    props, started = [], False
    for line in out.splitlines():
        if line.startswith("configuration properties"):
            started = True
        elif started and line.startswith("  "):
            name, scope, module, ptype, rest = line.split(None, 4)
            meaning, default = DEFAULT.match(rest).groups()
            supported = not meaning.endswith(NOT_YET)
            meaning = meaning[: -len(NOT_YET)] if not supported else meaning
            props.append((name, scope, None if module == "-" else module, ptype, meaning, default, supported))
    return props


# (title, module the properties need in loadModules or None, introduction, {property: example}).
# Examples are one line of YAML (flow style for lists and maps), valid where the scope allows.
GROUPS = [
    ("Listeners, TLS and HTTP/2", None,
     "Global only: listeners are per process. `secure: true` opens the HTTPS listener on `sport`.", {
         "port": "port: 8080",
         "sport": 'sport: "0.0.0.0:8443"',
         "secure": "secure: true",
         "disableNonEncryptedServer": "disableNonEncryptedServer: true",
         "cert": "cert: /etc/gateway/tls/example.com.crt",
         "key": "key: /etc/gateway/tls/example.com.key",
         "sni": 'sni: {"*.example.org": {cert: /etc/gateway/tls/org.crt, key: /etc/gateway/tls/org.key}}',
         "enableHTTP2": "enableHTTP2: false",
         "http2Settings": "http2Settings: {initialWindowSize: 1048576, maxConcurrentStreams: 128}",
         "generateDevCertificate": "generateDevCertificate: true",
         "ocspResponseFile": "ocspResponseFile: /etc/gateway/tls/example.com.ocsp.der",
         "enableHTTP3": "enableHTTP3: false",
         "tlsMinVersion": "tlsMinVersion: TLSv1.3",
         "tlsMaxVersion": "tlsMaxVersion: TLSv1.3",
         "cipherSuite": "cipherSuite: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]",
         "ecdhCurve": "ecdhCurve: [x25519, secp256r1]",
         "useClientCertificate": "useClientCertificate: true",
         "clientCertificateCaFile": "clientCertificateCaFile: /etc/gateway/tls/clients-ca.pem",
         "sessionTicketKeyRotation": "sessionTicketKeyRotation: 7200",
         "sessionTicketKeyFiles": "sessionTicketKeyFiles: [/etc/gateway/tls/ticket.new, /etc/gateway/tls/ticket.old]",
         "tlsSessionCacheSize": "tlsSessionCacheSize: 100000",
         "proxyProtocol": "proxyProtocol: true",
         "proxyProtocolTrusted": "proxyProtocolTrusted: [10.0.0.0/8]",
         "proxyProtocolMaxBytes": "proxyProtocolMaxBytes: 256",
         "enableOCSPStapling": "enableOCSPStapling: true",
         "enableAutomaticTLS": "enableAutomaticTLS: false",
         "useAutomaticTLSHTTPChallenge": "useAutomaticTLSHTTPChallenge: false",
         "automaticTLSContactEmail": "automaticTLSContactEmail: admin@example.com",
         "automaticTLSContactCacheDirectory": "automaticTLSContactCacheDirectory: /var/lib/gateway/acme",
         "automaticTLSLetsEncryptProduction": "automaticTLSLetsEncryptProduction: false",
         "automaticTLSDirectory": "automaticTLSDirectory: https://acme.example.net/directory",
         "automaticTLSCaFile": "automaticTLSCaFile: /etc/gateway/tls/acme-server-ca.pem",
         "automaticTLSRenewBefore": "automaticTLSRenewBefore: 1209600",
         "automaticTLSRetryMax": "automaticTLSRetryMax: 600",
         "automaticTLSTimeout": "automaticTLSTimeout: 30000",
         "automaticTLSValidationTimeout": "automaticTLSValidationTimeout: 120",
     }),
    ("Process, modules and logs", None,
     "Global only. `loadModules` also sets the handler order: the first module that answers wins.", {
         "loadModules": "loadModules: [cache, rproxy]",
         "modulesDir": "modulesDir: /usr/local/lib/gateway/modules",
         "workers": "workers: 4",
         "user": "user: www-data",
         "group": "group: www-data",
         "environmentVariables": "environmentVariables: {TZ: UTC}",
         "logFilePath": "logFilePath: /var/log/gateway/access.log",
         "logFormat": "logFormat: json",
         "requestId": "requestId: true",
         "errorLogFilePath": "errorLogFilePath: /var/log/gateway/error.log",
     }),
    ("Limits and timeouts", None,
     "Every limit has a default; times are milliseconds. Header limits are global because they size "
     "per-connection buffers; body limits may differ per host and location.", {
         "timeout": "timeout: 120000",
         "maxConnections": "maxConnections: 50000",
         "maxRequestHeaderBytes": "maxRequestHeaderBytes: 32768",
         "maxRequestHeaders": "maxRequestHeaders: 64",
         "maxRequestTargetBytes": "maxRequestTargetBytes: 4096",
         "maxRequestBodyBytes": "maxRequestBodyBytes: 104857600",
         "requestBufferMemory": "requestBufferMemory: 1048576",
         "requestBufferDirectory": "requestBufferDirectory: /var/tmp",
         "headerReadTimeout": "headerReadTimeout: 10000",
         "keepaliveTimeout": "keepaliveTimeout: 15000",
         "sendTimeout": "sendTimeout: 30000",
         "gracefulShutdownTimeout": "gracefulShutdownTimeout: 8000",
         "gracefulIdleTimeout": "gracefulIdleTimeout: 500",
         "upgradeTimeout": "upgradeTimeout: 10000",
     }),
    ("Health, readiness and metrics", None,
     "Answered before any route, on every listener, to peers in `adminAllow` only (others get the "
     "normal routing); with `adminListen`, on that listener alone. See "
     "[operations.md](operations.md#metrics).", {
         "adminListen": 'adminListen: "127.0.0.1:9901"',
         "healthPath": "healthPath: /healthz",
         "readyPath": "readyPath: /readyz",
         "metricsPath": "metricsPath: /metrics",
         "metricsMaxHosts": "metricsMaxHosts: 500",
         "adminAllow": 'adminAllow: [127.0.0.0/8, "::1", 10.0.0.0/8]',
     }),
    ("Hosts, locations and errors", None,
     "The structure of `hosts`. A host matches by `domain` and/or `ip`; a location by path prefix on a "
     "segment boundary; an `errorConfig` entry by status code when a handler fails.", {
         "domain": 'domain: "*.example.com"',
         "ip": "ip: 192.0.2.10",
         "locations": "locations: [{path: /downloads, enableDirectoryListing: true}]",
         "path": "path: /static",
         "errorConfig": "errorConfig: [{scode: 404, wwwroot: /var/www/errors}]",
         "scode": "scode: 404",
         "errorPages": "errorPages: [{scode: 404, path: /var/www/errors/404.html}]",
         "serverAdministratorEmail": "serverAdministratorEmail: ops@example.com",
     }),
    ("Static files and responses", None,
     "The static file handler runs last, after every module in `loadModules`.", {
         "wwwroot": "wwwroot: /var/www/html",
         "enableETag": "enableETag: false",
         "enableCompression": "enableCompression: false",
         "compressionMinBytes": "compressionMinBytes: 1024",
         "compressionCacheMaxBytes": "compressionCacheMaxBytes: 67108864",
         "enableDirectoryListing": "enableDirectoryListing: true",
         "openFileCacheEntries": "openFileCacheEntries: 1024",
         "openFileCacheInlineBytes": "openFileCacheInlineBytes: 4096",
         "openFileCacheValidity": "openFileCacheValidity: 5000",
         "allowDoubleSlashes": "allowDoubleSlashes: true",
         "customHeaders": 'customHeaders: {X-Frame-Options: DENY}',
         "setResponseHeaders": 'setResponseHeaders: {Cache-Control: "public, max-age=3600"}',
         "addResponseHeaders": 'addResponseHeaders: {Link: "</style.css>; rel=preload; as=style"}',
         "removeResponseHeaders": "removeResponseHeaders: [X-Powered-By]",
         "serverHeader": 'serverHeader: ""',
         "hstsMaxAge": "hstsMaxAge: 31536000",
         "hstsIncludeSubDomains": "hstsIncludeSubDomains: true",
         "hstsPreload": "hstsPreload: true",
     }),
    ("Redirects and rewrites", None, "Run before access control and the modules.", {
        "disableToHTTPSRedirect": "disableToHTTPSRedirect: true",
        "wwwredirect": "wwwredirect: true",
        "disableTrailingSlashRedirects": "disableTrailingSlashRedirects: true",
        "rewriteMap": 'rewriteMap: [{regex: "^/old/(.*)", replacement: "/new/$1", last: true}]',
        "enableRewriteLogging": "enableRewriteLogging: true",
    }),
    ("Access control, authentication and rate limits", None,
     "Checked per request in this order: client address (`trustedProxies`), redirects, `blocklist` and "
     "`allowlist`, rewrites, `nonStandardCodes` (redirects, codes, basic auth), `rateLimit`.", {
         "blocklist": "blocklist: [203.0.113.0/24]",
         "allowlist": 'allowlist: [10.0.0.0/8, "fd00::/8"]',
         "trustedProxies": "trustedProxies: [10.0.0.0/8]",
         "enableIPSpoofing": "enableIPSpoofing: false",
         "users": 'users: [{name: alice, pass: "$2b$10$9om2gT7BTeqsNXFY/6Uvn./1CI/ZFySHUhlxgTFq.H/cPmrS/C7si"}]',
         "htpasswdFile": "htpasswdFile: /etc/gateway/htpasswd",
         "nonStandardCodes": 'nonStandardCodes: [{scode: 401, url: /admin, realm: Admin}]',
         "rateLimit": "rateLimit: {requests: 10, per: 1s, burst: 20, key: ip, zone: api}",
         "bruteForceMaxClients": "bruteForceMaxClients: 262144",
     }),
    ("Upstream engine", None,
     "Shared by every backend module (rproxy, fauth, fproxy, fcgi, scgi): connection pools, timeouts, "
     "TLS to backends and DNS. A top-level `upstreams:` map names groups of backends "
     "([below](#named-upstream-groups)).", {
         "proxyConnectTimeout": "proxyConnectTimeout: 2000",
         "proxyReadTimeout": "proxyReadTimeout: 300000",
         "proxyKeepaliveConnections": "proxyKeepaliveConnections: 64",
         "proxyKeepaliveTimeout": "proxyKeepaliveTimeout: 60000",
         "proxyBackoffMax": "proxyBackoffMax: 30000",
         "proxyHttp2MaxConcurrentStreams": "proxyHttp2MaxConcurrentStreams: 200",
         "proxyHttp2WindowSize": "proxyHttp2WindowSize: 262144",
         "proxyHttp2PingInterval": "proxyHttp2PingInterval: 30000",
         "proxyBufferSize": "proxyBufferSize: 1048576",
         "protocol": "protocol: h2c",
         "proxyCaFile": "proxyCaFile: /etc/gateway/tls/backends-ca.pem",
         "resolver": 'resolver: ["10.0.0.2", "10.0.0.3:53"]',
         "dnsMinTtl": "dnsMinTtl: 5000",
         "dnsMaxTtl": "dnsMaxTtl: 300000",
         "dnsNegativeTtl": "dnsNegativeTtl: 2000",
         "dnsStaleTime": "dnsStaleTime: 600000",
         "dnsTimeout": "dnsTimeout: 500",
         "dnsTries": "dnsTries: 3",
         "dnsCacheEntries": "dnsCacheEntries: 4096",
         "proxyProtocolToBackend": "proxyProtocolToBackend: v2",
     }),
    ("rproxy: reverse proxy", "rproxy",
     "`proxyTo: http://NAME` uses a [named upstream group](#named-upstream-groups); a list of URLs is "
     "balanced at random, as in Ferron.", {
         "proxyTo": "proxyTo: [http://10.0.0.11:8080, http://10.0.0.12:8080]",
         "secureProxyTo": "secureProxyTo: https://10.0.0.11:8443",
         "enableLoadBalancerHealthCheck": "enableLoadBalancerHealthCheck: true",
         "loadBalancerHealthCheckMaximumFails": "loadBalancerHealthCheckMaximumFails: 5",
         "loadBalancerHealthCheckWindow": "loadBalancerHealthCheckWindow: 10000",
         "disableProxyCertificateVerification": "disableProxyCertificateVerification: true",
         "proxyInterceptErrors": "proxyInterceptErrors: true",
         "proxyKeepHost": "proxyKeepHost: true",
         "proxySetRequestHeaders": "proxySetRequestHeaders: {X-Forwarded-Prefix: /api}",
         "proxyRemoveRequestHeaders": "proxyRemoveRequestHeaders: [Cookie]",
         "proxySetResponseHeaders": 'proxySetResponseHeaders: {Cache-Control: "no-store"}',
         "proxyRemoveResponseHeaders": "proxyRemoveResponseHeaders: [Server, X-Powered-By]",
         "disableProxyXForwarded": "disableProxyXForwarded: true",
     }),
    ("Active health checks of upstream groups", None,
     "Keys of the `healthCheck` map of a [named upstream group](#named-upstream-groups) (scope "
     "*upstream group*): one worker probes every server of the group with a GET and all workers skip "
     "the servers found down; when every server is down they are all tried again (passive health "
     "decides). State survives reloads that keep the group and server.", {
         "healthCheck": "healthCheck: {path: /healthz}",
         "healthCheck.path": "healthCheck: {path: /ready}",
         "healthCheck.interval": "healthCheck: {path: /healthz, interval: 2000}",
         "healthCheck.timeout": "healthCheck: {path: /healthz, timeout: 500}",
         "healthCheck.expectedStatus": "healthCheck: {path: /healthz, expectedStatus: [200, 204]}",
         "healthCheck.fails": "healthCheck: {path: /healthz, fails: 3}",
         "healthCheck.passes": "healthCheck: {path: /healthz, passes: 2}",
         "healthCheck.host": "healthCheck: {path: /healthz, host: status.example.com}",
     }),
    ("fauth: forward authentication", "fauth",
     "Put `fauth` before the module it protects in `loadModules`.", {
         "authTo": "authTo: http://127.0.0.1:9091/verify",
         "forwardedAuthCopyHeaders": "forwardedAuthCopyHeaders: [X-User, X-Groups]",
     }),
    ("fproxy: forward proxy", "fproxy",
     "Absolute-form `http://` requests and CONNECT tunnels. Private address ranges are refused unless a "
     "CIDR in `forwardProxyAllow` names them.", {
         "forwardProxyAllow": 'forwardProxyAllow: ["*.example.com", 10.1.0.0/16]',
         "forwardProxyDeny": 'forwardProxyDeny: ["*.internal.example.com"]',
         "forwardProxyAuth": "forwardProxyAuth: true",
         "forwardProxyPorts": "forwardProxyPorts: [80, 443, 8443]",
         "forwardProxyIdleTimeout": "forwardProxyIdleTimeout: 600000",
     }),
    ("fcgi: FastCGI (PHP-FPM)", "fcgi",
     "With `fcgiPath` every request under the prefix goes to the backend; with "
     "`fcgiScriptExtensions` files with those extensions under `wwwroot` do.", {
         "fcgiTo": "fcgiTo: unix:///run/php/php8.2-fpm.sock",
         "fcgiPath": "fcgiPath: /app",
         "fcgiScriptExtensions": "fcgiScriptExtensions: [.php]",
     }),
    ("scgi: SCGI", "scgi", "Active only when `scgiPath` is set.", {
        "scgiTo": "scgiTo: tcp://127.0.0.1:4000/",
        "scgiPath": "scgiPath: /scgi",
    }),
    ("cgi: CGI programs", "cgi",
     "Files under `/cgi-bin/` and files with a `cgiScriptExtensions` extension are run.", {
         "cgiScriptExtensions": "cgiScriptExtensions: [.cgi, .py]",
         "cgiScriptInterpreters": "cgiScriptInterpreters: {.py: [python3, -u], .rb: null}",
         "cgiMaxProcesses": "cgiMaxProcesses: 32",
     }),
    ("cache: response cache", "cache",
     "Put `cache` before the module whose responses it stores (`loadModules: [cache, rproxy]`).", {
         "cacheVaryHeaders": "cacheVaryHeaders: [Accept-Language]",
         "cacheIgnoreHeaders": "cacheIgnoreHeaders: [Set-Cookie]",
         "maximumCacheResponseSize": "maximumCacheResponseSize: 1048576",
         "maximumCachedResponseSize": "maximumCachedResponseSize: 1048576",
         "maximumCacheEntries": "maximumCacheEntries: 10000",
         "maximumCacheMemory": "maximumCacheMemory: 536870912",
         "cacheTargetedHeader": "cacheTargetedHeader: CDN-Cache-Control",
     }),
    ("Accepted but not supported yet: wsgi, wsgid, asgi", None,
     "Ferron's Python modules. Their properties load (a warning says they are not supported yet) so "
     "Ferron files keep working; requests they would answer fall through to the next handler.", {
         "wsgiApplicationPath": "wsgiApplicationPath: /srv/app/wsgi.py",
         "wsgiPath": "wsgiPath: /",
         "wsgiClearModuleImportPath": "wsgiClearModuleImportPath: true",
         "wsgidApplicationPath": "wsgidApplicationPath: /srv/app/wsgi.py",
         "wsgidPath": "wsgidPath: /",
         "asgiApplicationPath": "asgiApplicationPath: /srv/app/asgi.py",
         "asgiPath": "asgiPath: /",
         "asgiClearModuleImportPath": "asgiClearModuleImportPath: true",
     }),
]

INTRO = """# Configuration reference

Generated from the property registry (`gateway --help`) by `scripts/config-reference.py`; do not
edit by hand. The file format is Ferron 1.x's `ferron.yaml`:

```yaml
global:                      # global-only properties, and defaults for every host and location
  port: 8080
  loadModules: [rproxy]
hosts:                       # the first host whose domain and ip both match wins
  - domain: example.com      # exact, "*.example.com" (also example.com itself) or "*"
    wwwroot: /var/www/example
    locations:               # the first location whose path prefix matches (segment boundary)
      - path: /api
        proxyTo: http://127.0.0.1:3000
    errorConfig:             # merged when a handler fails with this status, then the chain re-runs
      - scode: 404
        wwwroot: /var/www/errors
include:                     # more files (globs, relative to this file): hosts appended
  - conf.d/*.yaml
```

Properties set at a wider scope are inherited: lists concatenate, maps merge key by key, scalars are
overridden. **Scope**: *global* = only under `global`; *any* = global, host, location or
errorConfig entry; *host*, *location*, *errorConfig* = only there; *upstream group* = in a group of
the top-level `upstreams:` map ([below](#named-upstream-groups)). **Module**: a property of a
module is used only when that module is in `loadModules` (otherwise a warning says it is unused).
**Types**: `int a..b` (decimal, checked against the range), `int|null` (null: no limit), `bool`
(`true`/`false`), `port|address` (a port number, `"address:port"` or `"unix:/path"`),
`list<string>`, `string|list` (one value or a list), `map<string>` (name: value), `map`,
`list<map>`. Times are in milliseconds unless the meaning says otherwise.

Every error is reported as `file:line:column: property: what is wrong` and stops the start (or a
reload, which keeps the running configuration); an unknown property is a warning with a "did you
mean" suggestion. `gateway -t -c FILE` checks a file without starting.

Ferron's environment overrides set `global` properties after the file and its includes are read,
under `FERRON_` or our `GATEWAY_` prefix (which wins): `PORT`, `SPORT`, `LOG_FILE_PATH`,
`ERROR_LOG_FILE_PATH`, `CERT`, `KEY`, `TLS_MIN_VERSION`, `TLS_MAX_VERSION`, `SECURE`, `ENABLE_HTTP2`,
`ENABLE_HTTP3`, `DISABLE_NON_ENCRYPTED_SERVER`, `ENABLE_OCSP_STAPLING`, `ENABLE_DIRECTORY_LISTING`,
`ENABLE_COMPRESSION`, `HTTP2_INITIAL_WINDOW_SIZE`, `HTTP2_MAX_FRAME_SIZE`,
`HTTP2_MAX_CONCURRENT_STREAMS`, `HTTP2_MAX_HEADER_LIST_SIZE`, `HTTP2_ENABLE_CONNECT_PROTOCOL`,
`LOAD_MODULES` and `BLOCKLIST` (comma-separated), `SNI_HOSTS` with `SNI_<host>_CERT`/`_KEY`, and
`ENV_VARS` with `ENV_<NAME>`. Errors name the variable: `$GATEWAY_PORT:1:1: port: ...`.

"""

UPSTREAMS = """## Named upstream groups

A top-level `upstreams:` map names groups of backends; `proxyTo: http://NAME` uses one (so do
`secureProxyTo` and `authTo`).

| key | type | default | meaning |
| --- | --- | --- | --- |
| `servers` | `list` | none (required) | backend URLs (`http://`, `https://`, `h2c://`, `unix:///path`, `tcp://host:port/`), or maps `{url, weight, tlsVerify}` |
| `protocol` | `string` | http1 | `http1`, `h2` (HTTP/2 over TLS, ALPN h2: `https://` servers), `h2c` (HTTP/2 with prior knowledge: `http://` servers) or `auto` (`https://` servers: ALPN offers h2 and http/1.1, and each server's answer decides which engine its requests use); an `h2c://host:port` URL is the same as `protocol: h2c` for one server. HTTP/2 groups serve `proxyTo`/`secureProxyTo` (gRPC included), without `healthCheck` |
| `servers[].weight` | `int 1..1000` | 1 | share of the requests relative to the other servers |
| `servers[].tlsVerify` | `bool` | true | check an `https://` server's certificate (against `proxyCaFile` or the system store) |
| `balance` | `string` | roundRobin | `random`, `roundRobin`, `leastConnections`, `twoRandomChoices` or `hash` |
| `hashKey` | `string` | ip | with `balance: hash`: `ip`, `header:NAME` or `cookie:NAME` | Groups keep
their pools, health and balancer state across reloads as long as their servers do not change.

```yaml
upstreams:
  api:
    balance: roundRobin        # random, roundRobin (default), leastConnections, twoRandomChoices, hash
    hashKey: header:X-User     # with hash: ip (default), header:NAME or cookie:NAME
    servers:
      - http://10.0.0.1:8080
      - url: https://10.0.0.2:8443
        weight: 3                # 1 to 1000
        tlsVerify: false         # skip certificate checks for this one
    healthCheck:                 # optional active checks (see above)
      path: /healthz
      interval: 2000
      expectedStatus: [200, 204]
global:
  loadModules: [rproxy]
  proxyTo: http://api
```
"""


def check_groups(props):
    """Every registry property in exactly one group, each group's properties of its module."""
    known = {p[0]: p for p in props}
    listed = [name for _, _, _, examples in GROUPS for name in examples]
    missing = sorted(set(known) - set(listed))
    unknown = sorted(set(listed) - set(known))
    misplaced = [name for _, module, _, examples in GROUPS for name in examples
                 if name in known and module and known[name][2] != module]
    problems = [f"{what}: {names}" for what, names in
                (("no group and example in scripts/config-reference.py", missing),
                 ("not in the registry", unknown), ("in the wrong module's group", misplaced)) if names]
    if problems:
        raise ValueError("; ".join(problems))


def cell(text):
    return text.replace("|", "\\|")


def type_text(ptype):
    base, _, rng = ptype.partition(":")
    return cell(f"{base} {rng}" if rng else base)


def anchor(title):
    return re.sub(r"[^a-z0-9 -]", "", title.lower()).replace(" ", "-")


def render_group(title, module, intro, examples, known):
    rows = [f"## {title}", "", intro + (f" Needs `loadModules: [{module}]`." if module else ""), "",
            "| property | scope | type | default | meaning | example |", "| --- | --- | --- | --- | --- | --- |"]
    for name, example in examples.items():
        _, scope, _, ptype, meaning, default, supported = known[name]
        meaning = meaning if supported else f"**not supported yet**: {meaning}"
        rows.append(f"| `{name}` | {SCOPES[scope]} | `{type_text(ptype)}` | {cell(default or 'none')} | "
                    f"{cell(meaning)} | `{cell(example)}` |")
    return rows + [""]


def render(props):
    check_groups(props)
    known = {p[0]: p for p in props}
    toc = [f"- [{title}](#{anchor(title)})" for title, _, _, _ in GROUPS]
    toc += ["- [Named upstream groups](#named-upstream-groups)", ""]
    rows = [INTRO.rstrip("\n"), ""] + toc
    for group in GROUPS:
        rows += render_group(*group, known)
    return "\n".join(rows) + "\n" + UPSTREAMS


def examples(props):
    """[(property, scope letter, module or None, example)] for the test that loads each example."""
    by_name = {name: ex for _, _, _, exs in GROUPS for name, ex in exs.items()}
    return [(name, scope, module, by_name[name]) for name, scope, module, *_ in props if name in by_name]


def main():
    parser = argparse.ArgumentParser(description="Writes docs/configuration.md from `gateway --help`.")
    parser.add_argument("gateway", nargs="?", default="build/gateway", help="the binary (default: build/gateway)")
    parser.add_argument("--check", action="store_true", help="only say whether the file is current (exit 1 if not)")
    args = parser.parse_args()
    props = properties(args.gateway)
    try:
        text = render(props)
    except ValueError as e:
        sys.exit(f"config-reference: {e}")
    if args.check:
        current = OUT.exists() and OUT.read_text() == text
        print(f"{OUT.name} is {'current' if current else 'stale: run without --check'}")
        sys.exit(0 if current else 1)
    OUT.write_text(text)
    print(f"wrote {OUT.name}: {len(props)} properties")


if __name__ == "__main__":
    main()

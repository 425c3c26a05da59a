"""gRPC through the gateway to an h2c backend: a real grpcio server and client (generic handlers with
bytes messages, so no generated code), over h2c and TLS to the gateway. Unary, server, client and
bidirectional streaming (delivered as produced, never buffered), a deadline, an error status."""
import queue
import subprocess
import sys
import time
from concurrent import futures

import grpc
import pytest

from conftest import PORT_PLACEHOLDER, free_port
from tls_helpers import make_cert, tls_config, wait_port

SERVICE = "test.Echo"


def _unary(request, context):
    return request[::-1]


def _server_stream(request, context):
    for i in range(int(request)):
        yield b"msg %d" % i
        time.sleep(0.3)


def _client_stream(request_iterator, context):
    return b"|".join(request_iterator)


def _bidi(request_iterator, context):
    for r in request_iterator:
        yield b"echo " + r


def _slow(request, context):
    time.sleep(3)
    return b"late"


def _fail(request, context):
    context.abort(grpc.StatusCode.PERMISSION_DENIED, "not for you")


@pytest.fixture(scope="module")
def grpc_backend():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    ident = dict(request_deserializer=None, response_serializer=None)
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(_unary, **ident),
        "ServerStream": grpc.unary_stream_rpc_method_handler(_server_stream, **ident),
        "ClientStream": grpc.stream_unary_rpc_method_handler(_client_stream, **ident),
        "Bidi": grpc.stream_stream_rpc_method_handler(_bidi, **ident),
        "Slow": grpc.unary_unary_rpc_method_handler(_slow, **ident),
        "Fail": grpc.unary_unary_rpc_method_handler(_fail, **ident),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port
    server.stop(0)


@pytest.fixture(params=["h2c", "tls"])
def channel(request, start_gateway, grpc_backend, tmp_path, wwwroot):
    """A grpc channel to the gateway (h2c prior knowledge, or TLS with ALPN h2) proxying to the
    backend over h2c."""
    extra = {"loadModules": "[rproxy]", "proxyTo": f"h2c://127.0.0.1:{grpc_backend}"}
    if request.param == "h2c":
        gw = start_gateway(f"global:\n  port: {PORT_PLACEHOLDER}\n  workers: 1\n  loadModules: [rproxy]\n"
                           f"  proxyTo: \"{extra['proxyTo']}\"\n")
        ch = grpc.insecure_channel(f"127.0.0.1:{gw.port}")
    else:
        cert, key = make_cert(tmp_path / "certs", "localhost", ["DNS:localhost", "IP:127.0.0.1"])
        sport = free_port()
        start_gateway(tls_config(wwwroot, cert, key, sport, extra=extra))
        wait_port(sport)
        creds = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
        ch = grpc.secure_channel(f"127.0.0.1:{sport}", creds,
                                 options=[("grpc.ssl_target_name_override", "localhost")])
    yield ch
    ch.close()


def method(ch, kind, name):
    return getattr(ch, kind)(f"/{SERVICE}/{name}")


def test_unary(channel):
    assert method(channel, "unary_unary", "Unary")(b"hello", timeout=10) == b"olleh"
    big = bytes(range(256)) * 2000  # 512 KB each way
    assert method(channel, "unary_unary", "Unary")(big, timeout=20) == big[::-1]


def test_server_streaming_is_not_buffered(channel):
    start = time.monotonic()
    arrivals = []
    for msg in method(channel, "unary_stream", "ServerStream")(b"5", timeout=20):
        arrivals.append((time.monotonic() - start, msg))
    assert [m for _, m in arrivals] == [b"msg %d" % i for i in range(5)]
    assert arrivals[0][0] < 0.9  # the first message arrived while the backend was still producing
    assert arrivals[-1][0] - arrivals[0][0] > 0.9


def test_client_streaming(channel):
    reply = method(channel, "stream_unary", "ClientStream")(iter([b"a", b"bb", b"ccc"]), timeout=10)
    assert reply == b"a|bb|ccc"


def test_bidirectional_streaming_interleaves(channel):
    q = queue.Queue()

    def requests():
        for i in range(5):
            yield b"%d" % i
            q.get(timeout=10)  # the next request only once the previous answer came back

    replies = []
    for r in method(channel, "stream_stream", "Bidi")(requests(), timeout=20):
        replies.append(r)
        q.put(None)
    assert replies == [b"echo %d" % i for i in range(5)]


def test_deadline_exceeded(channel):
    with pytest.raises(grpc.RpcError) as e:
        method(channel, "unary_unary", "Slow")(b"x", timeout=0.5)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert method(channel, "unary_unary", "Unary")(b"ok", timeout=10) == b"ko"  # the channel still works


def test_error_status_passes_through(channel):
    with pytest.raises(grpc.RpcError) as e:
        method(channel, "unary_unary", "Fail")(b"x", timeout=10)
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert e.value.details() == "not for you"


BACKEND_PROCESS = """
import sys, time
from concurrent import futures
import grpc
def stream(request, context):
    for i in range(int(request)):
        yield b"msg %d" % i
        time.sleep(0.3)
server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
handler = grpc.unary_stream_rpc_method_handler(stream)
generic = grpc.method_handlers_generic_handler("test.Echo", {"ServerStream": handler})
server.add_generic_rpc_handlers((generic,))
print(server.add_insecure_port("127.0.0.1:0"), flush=True)
server.start()
server.wait_for_termination()
"""


def test_backend_killed_mid_stream_resets_the_client_stream(start_gateway):
    proc = subprocess.Popen([sys.executable, "-c", BACKEND_PROCESS], stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())
        gw = start_gateway(f"global:\n  port: {PORT_PLACEHOLDER}\n  workers: 1\n  loadModules: [rproxy]\n"
                           f"  proxyTo: \"h2c://127.0.0.1:{port}\"\n")
        with grpc.insecure_channel(f"127.0.0.1:{gw.port}") as ch:
            got = []
            with pytest.raises(grpc.RpcError) as e:
                for msg in method(ch, "unary_stream", "ServerStream")(b"20", timeout=20):
                    got.append(msg)
                    if len(got) == 2:
                        proc.kill()  # the backend's connection is lost mid-stream
            assert got == [b"msg 0", b"msg 1"]
            assert e.value.code() == grpc.StatusCode.INTERNAL
            assert "RST_STREAM" in e.value.details()  # reset towards the client, never a clean end
    finally:
        proc.kill()
        proc.wait()

"""``paddleface serve`` stops gracefully on SIGTERM and SIGINT while clients are posting."""
import http.client
import signal
import threading
import time

import pytest

pytest.importorskip("fastapi")

from paddleface.serve.process import ServiceProcess  # noqa: E402

GRACEFUL_TIMEOUT = 15
CLIENTS = 4


def post_once(port: int, body: bytes, timeout: float):
    """One request on a fresh connection: ('status', code) or ('refused'|'reset'|'hang', why)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.connect()
    except ConnectionRefusedError:
        return "refused", None
    try:
        conn.request("POST", "/detect?long_side=1280", body=body,
                     headers={"Content-Type": "image/jpeg"})
        r = conn.getresponse()
        r.read()
        return "status", r.status
    except TimeoutError:
        return "hang", None
    except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected) as e:
        return "reset", type(e).__name__
    finally:
        conn.close()


@pytest.mark.parametrize("sig,workers", [(signal.SIGTERM, 1), (signal.SIGINT, 1),
                                         (signal.SIGTERM, 2)],
                         ids=["SIGTERM", "SIGINT", "SIGTERM-2-workers"])
def test_stop_signal_while_four_clients_post(tmp_path, shared, sig, workers):
    body = (shared / "images" / "crowd.jpg").read_bytes()
    log = tmp_path / "serve.log"
    svc = ServiceProcess(["--model", "rfb-lm", "--threads", "1", "--workers", str(workers),
                          "--graceful-timeout", str(GRACEFUL_TIMEOUT)], log=log).start()
    outcomes, lock = [], threading.Lock()
    signalled = threading.Event()
    kill_time = [0.0]

    def client():
        while True:
            start = time.time()
            kind, detail = post_once(svc.port, body, timeout=GRACEFUL_TIMEOUT + 30)
            with lock:
                outcomes.append((kind, detail, start, time.time()))
            if kind != "status" and signalled.is_set():
                return
            if signalled.is_set() and time.time() - kill_time[0] > GRACEFUL_TIMEOUT + 5:
                return

    threads = [threading.Thread(target=client, daemon=True) for _ in range(CLIENTS)]
    try:
        for t in threads:
            t.start()
        time.sleep(3)  # every client has had requests answered and has one in flight
        kill_time[0] = time.time()
        svc.proc.send_signal(sig)
        signalled.set()
        returncode = svc.proc.wait(GRACEFUL_TIMEOUT + 10)
        took = time.time() - kill_time[0]
        for t in threads:
            t.join(GRACEFUL_TIMEOUT + 40)
    finally:
        svc.stop()
    text = log.read_text(errors="replace")
    kinds = [o[0] for o in outcomes]
    statuses = [o[1] for o in outcomes if o[0] == "status"]
    in_flight = [o for o in outcomes if o[0] == "status" and o[2] < kill_time[0] < o[3]]
    print(f"{sig.name}: exit {returncode} after {took:.1f} s; outcomes "
          f"{ {k: kinds.count(k) for k in set(kinds)} }, statuses {sorted(set(statuses))}, "
          f"{len(in_flight)} in flight at the signal and answered")
    assert returncode == 0, text[-2000:]
    assert took < GRACEFUL_TIMEOUT + 10  # the graceful timeout, plus start-up noise under load
    assert "hang" not in kinds and not any(t.is_alive() for t in threads)
    assert set(statuses) == {200}, statuses
    # a request the server had accepted is answered; a late connection is refused (or reset
    # by the kernel when it sat in the listen backlog as the socket closed), never half-served
    assert in_flight, "no request was in flight at the signal"
    assert kinds.count("refused") + kinds.count("reset") >= 1
    assert "FatalError" not in text and "Traceback" not in text and "C++" not in text, text
    assert text.count("Finished server process") == workers  # each worker stopped in order

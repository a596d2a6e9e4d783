"""`run -it`: the supervisor holds PID 1 at its exec until the attaching
CLI's connection is pending (monitor._after_a_client), and no longer than
the CLI lives: a CLI that dies before connecting no longer costs the
container ATTACH_WAIT (30 s) of its start."""

import os
import socket
import threading

from helpers.container import monitor
from helpers.container.attach import Server


def _waiting(record):
    done = threading.Event()
    threading.Thread(target=lambda: (record(42), done.set()), daemon=True).start()
    return done


def test_the_wait_ends_with_the_client_or_with_the_cli(tmp_path):
    server = Server(str(tmp_path / "attach.sock"))
    r, w = os.pipe()
    started = []
    done = _waiting(monitor._after_a_client(started.append, server, w))
    assert not done.wait(0.5)           # the CLI lives, no client yet: it waits
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(str(tmp_path / "attach.sock"))
    assert done.wait(10) and started == [42]
    client.close()

    server = Server(str(tmp_path / "attach2.sock"))
    done = _waiting(monitor._after_a_client(started.append, server, w))
    assert not done.wait(0.3)
    os.close(r)                         # the CLI died before it connected
    assert done.wait(10)
    os.close(w)

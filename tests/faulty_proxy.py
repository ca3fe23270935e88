"""A TCP proxy on loopback that the fault tests control: it forwards a client's connections
to a server and, when told, cuts one mid-stream after N bytes from the client, or flips one
byte of what the client sends. Real sockets both ways, so the agent and the server meet a
real broken connection and a real corrupted chunk."""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field


@dataclass
class Fault:
    """What to do to the client's bytes, counted over all connections from the moment it
    is armed; each fault fires once."""

    cut_after: int | None = None  # close both sides once this many bytes went upstream
    # Xor one byte of the body of the n-th PATCH (1-based, over all connections) with 0x01:
    # (n, offset in its body). Counted by parsing the requests, so it never hits a header.
    flip_in_patch: tuple[int, int] | None = None
    fired: list[str] = field(default_factory=list)


class _Requests:
    """Where one connection's upstream bytes are: in a request's head or in its body."""

    def __init__(self) -> None:
        self.head = bytearray()
        self.body_left = 0
        self.body_seen = 0
        self.patch: int | None = None  # the number of the PATCH whose body this is

    def walk(self, data: bytearray, patches: list[int]) -> list[tuple[int, int, int]]:
        """(index in ``data``, PATCH number, offset in its body) of each body byte run."""
        runs = []
        i = 0
        while i < len(data):
            if self.body_left:
                take = min(self.body_left, len(data) - i)
                if self.patch is not None:
                    runs.append((i, self.patch, self.body_seen))
                self.body_left -= take
                self.body_seen += take
                i += take
                continue
            end = (self.head + data[i:]).find(b"\r\n\r\n")
            if end < 0:
                self.head += data[i:]
                break
            used = end + 4 - len(self.head)
            head = bytes(self.head + data[i : i + used])
            self.head = bytearray()
            i += used
            lines = head.split(b"\r\n")
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            self.body_left, self.body_seen = length, 0
            self.patch = None
            if lines[0].startswith(b"PATCH ") and length:
                patches[0] += 1
                self.patch = patches[0]
        return runs


class FaultyProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._fault = Fault()
        self._sent = 0  # client bytes sent upstream since the fault was armed
        self._patches = [0]  # PATCH requests seen since the fault was armed
        self.forwarded = 0  # client bytes sent upstream in all
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def arm(self, fault: Fault) -> Fault:
        with self._lock:
            self._fault, self._sent, self._patches = fault, 0, [0]
        return fault

    def close(self) -> None:
        self._stop.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=30)
            except OSError:
                client.close()
                continue
            threading.Thread(target=self._upstream, args=(client, server), daemon=True).start()
            threading.Thread(target=self._downstream, args=(server, client), daemon=True).start()

    def _upstream(self, client: socket.socket, server: socket.socket) -> None:
        requests = _Requests()
        try:
            while data := client.recv(1 << 16):
                data, cut = self._apply(bytearray(data), requests)
                server.sendall(data)
                if cut:
                    break
        except OSError:
            pass
        for s in (client, server):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def _apply(self, data: bytearray, requests: _Requests) -> tuple[bytearray, bool]:
        with self._lock:
            fault, start = self._fault, self._sent
            cut = False
            runs = requests.walk(data, self._patches)
            if fault.flip_in_patch is not None:
                wanted, offset = fault.flip_in_patch
                for at, patch, seen in runs:
                    if patch == wanted and seen <= offset < seen + (len(data) - at):
                        data[at + offset - seen] ^= 0x01
                        fault.fired.append(f"flipped byte {offset} of PATCH {patch}")
                        fault.flip_in_patch = None
                        break
            if fault.cut_after is not None and start + len(data) >= fault.cut_after:
                data = data[: fault.cut_after - start]
                fault.fired.append(f"cut after {fault.cut_after}")
                fault.cut_after = None
                cut = True
            self._sent += len(data)
            self.forwarded += len(data)
        return data, cut

    @staticmethod
    def _downstream(server: socket.socket, client: socket.socket) -> None:
        try:
            while data := server.recv(1 << 16):
                client.sendall(data)
        except OSError:
            pass
        for s in (client, server):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

#!/usr/bin/python3
"""A second, independent WebSocket peer for the server's /ws: Debian's python3-wsproto does the
WebSocket side (handshake, masking, framing, ping, close); the framewire frames it carries come
from the caller, one hex string per binary message, and the binary messages it receives are
printed one hex string per line.

usage: wsproto_peer.py HOST PORT COUNT HEX...
  sends each HEX as a binary message (the first alone, then the rest once its answer came),
  sends a WebSocket ping, and reads until COUNT binary messages and the pong have arrived;
  then closes with 1000 and waits for the server's close.
"""
import socket
import sys

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection, BytesMessage, CloseConnection, Ping, Pong, RejectConnection, Request,
)


def main():
    host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    messages = [bytes.fromhex(h) for h in sys.argv[4:]]
    sock = socket.create_connection((host, port), timeout=10)
    ws = WSConnection(ConnectionType.CLIENT)
    sock.sendall(ws.send(Request(host=host, target="/ws", subprotocols=["framewire.v1"])))
    received, ponged, closed, accepted = [], False, False, False
    pending = bytearray()

    def pump():
        nonlocal ponged, closed, accepted
        data = sock.recv(65536)
        if not data:
            raise SystemExit("the server closed the connection early")
        ws.receive_data(data)
        for event in ws.events():
            if isinstance(event, AcceptConnection):
                if event.subprotocol != "framewire.v1":
                    raise SystemExit(f"subprotocol {event.subprotocol!r}")
                accepted = True
            elif isinstance(event, RejectConnection):
                raise SystemExit(f"rejected: {event.status_code}")
            elif isinstance(event, BytesMessage):
                pending.extend(event.data)
                if event.message_finished:
                    received.append(bytes(pending))
                    print(bytes(pending).hex(), flush=True)
                    pending.clear()
            elif isinstance(event, Pong):
                ponged = True
            elif isinstance(event, CloseConnection):
                closed = True
                if ws.state.name != "CLOSED":
                    sock.sendall(ws.send(event.response()))

    while not accepted:
        pump()
    first, rest = messages[0], messages[1:]
    sock.sendall(ws.send(BytesMessage(data=first)))
    while not received:
        pump()
    for m in rest:
        sock.sendall(ws.send(BytesMessage(data=m)))
    sock.sendall(ws.send(Ping(payload=b"wsproto")))
    while len(received) < count or not ponged:
        pump()
    sock.sendall(ws.send(CloseConnection(code=1000, reason="done")))
    while not closed:
        pump()
    print("closed", flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""UDP probes for the NAT end-to-end tests. Every command is bounded by a timeout.

  observe ADDR PORT SECS            print "ip:port" of the first datagram's source
  send2 SRC SPORT DST1 P1 DST2 P2   send one datagram from one socket to two destinations
  reflect ADDR PORT ALT_ADDR ALT_PORT SECS
                                    on the first datagram, print its source, then answer it
                                    from this socket ("same"), from ADDR:ALT_PORT ("port")
                                    and from ALT_ADDR:PORT ("addr")
  probe SRC SPORT DST DPORT SECS    send one datagram, print the label of every reply
  send SRC SPORT DST DPORT          send one datagram
  listen ADDR PORT SECS             print "got ip:port" for every datagram received
  echo ADDR PORT SECS               answer every datagram with its own bytes for SECS
  flows SRC DST DPORT N SECS        open N new sockets (new NAT flows) paced over SECS, one
                                    datagram each, sent again once after 1 s without an echo
                                    (as a DNS client retries); print "answered/N first-try F"
"""
import socket
import sys
import time


def sock(addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, int(port)))
    return s


def main(argv):
    cmd = argv[1]
    if cmd == "observe":
        s = sock(argv[2], argv[3])
        s.settimeout(float(argv[4]))
        _, peer = s.recvfrom(2048)
        print(f"{peer[0]}:{peer[1]}", flush=True)
    elif cmd == "send2":
        s = sock(argv[2], argv[3])
        s.sendto(b"one", (argv[4], int(argv[5])))
        s.sendto(b"two", (argv[6], int(argv[7])))
    elif cmd == "reflect":
        addr, port, alt_addr, alt_port, secs = argv[2], int(argv[3]), argv[4], int(argv[5]), float(argv[6])
        s = sock(addr, port)
        s.settimeout(secs)
        _, peer = s.recvfrom(2048)
        print(f"{peer[0]}:{peer[1]}", flush=True)
        s.sendto(b"same", peer)
        sock(addr, alt_port).sendto(b"port", peer)
        sock(alt_addr, port).sendto(b"addr", peer)
    elif cmd == "probe":
        s = sock(argv[2], argv[3])
        s.sendto(b"hello", (argv[4], int(argv[5])))
        deadline = time.monotonic() + float(argv[6])
        labels = []
        while (left := deadline - time.monotonic()) > 0:
            s.settimeout(left)
            try:
                data, _ = s.recvfrom(2048)
            except socket.timeout:
                break
            labels.append(data.decode())
        print(",".join(sorted(labels)), flush=True)
    elif cmd == "send":
        sock(argv[2], argv[3]).sendto(b"unsolicited", (argv[4], int(argv[5])))
    elif cmd == "listen":
        s = sock(argv[2], argv[3])
        deadline = time.monotonic() + float(argv[4])
        while (left := deadline - time.monotonic()) > 0:
            s.settimeout(left)
            try:
                _, peer = s.recvfrom(2048)
            except socket.timeout:
                break
            print(f"got {peer[0]}:{peer[1]}", flush=True)
    elif cmd == "echo":
        s = sock(argv[2], argv[3])
        deadline = time.monotonic() + float(argv[4])
        while (left := deadline - time.monotonic()) > 0:
            s.settimeout(left)
            try:
                data, peer = s.recvfrom(2048)
            except socket.timeout:
                break
            s.sendto(data, peer)
    elif cmd == "flows":
        src, dst, dport, n, secs = argv[2], argv[3], int(argv[4]), int(argv[5]), float(argv[6])
        answered = first = 0
        for i in range(n):
            s = sock(src, 0)
            s.settimeout(1.0)
            msg = f"flow {i}".encode()
            for attempt in range(2):
                s.sendto(msg, (dst, dport))
                try:
                    data, _ = s.recvfrom(2048)
                except socket.timeout:
                    continue
                if data == msg:
                    answered += 1
                    first += attempt == 0
                    break
            s.close()
            time.sleep(secs / n)
        print(f"{answered}/{n} first-try {first}", flush=True)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)

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
  raw SRC SPORT DST DPORT PROTO FIELD TAG
                                    send one hand-made IPv4 packet (raw socket): PROTO udp
                                    with UDP length FIELD ("ok": the right one), or tcp (SYN)
                                    with data offset FIELD words; the payload is TAG
  sniff DEV PORT SECS               print the payload of every UDP/TCP frame to PORT seen on
                                    DEV (AF_PACKET: before the kernel's own checks), one a line
  fragflood NET DST N SECS          send up to N non-first UDP fragments (1000 bytes, MF set;
                                    60 per datagram, never its first) to DST from sources
                                    NET.1-NET.250 (raw socket), for at most SECS; print how
                                    many were sent
  ttlflood NET DST N SECS           send up to N UDP packets with TTL 1 to DST from sources
                                    NET.100-NET.199 (raw socket) for at most SECS; print the count
  flows SRC DST DPORT N SECS        open N new sockets (new NAT flows) paced over SECS, one
                                    datagram each, sent again once after 1 s without an echo
                                    (as a DNS client retries); print "answered/N first-try F"
"""
import select
import socket
import struct
import sys
import time


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def raw_packet(src, sport, dst, dport, proto, field, tag):
    """IPv4 + UDP (length field `field`) or TCP SYN (data offset `field` words), payload tag."""
    data = tag.encode()
    if proto == "udp":
        n = 8 + len(data) if field == "ok" else int(field)
        l4 = struct.pack("!HHHH", sport, dport, n, 0) + data  # checksum 0: none (RFC 768)
        pnum = 17
    else:
        hdr = struct.pack("!HHIIBBHHH", sport, dport, 1, 1, int(field) << 4, 0x02, 65535, 0, 0)
        pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(hdr) + len(data))
        c = csum(pseudo + hdr + data)
        l4 = hdr[:16] + struct.pack("!H", c) + hdr[18:] + data
        pnum = 6
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 0x1234, 0x4000, 64, pnum, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return ip + l4


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
    elif cmd == "raw":
        src, sport, dst, dport, proto, field, tag = argv[2:9]
        pkt = raw_packet(src, int(sport), dst, int(dport), proto, field, tag)
        r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        r.sendto(pkt, (dst, 0))
    elif cmd == "sniff":
        dev, port, secs = argv[2], int(argv[3]), float(argv[4])
        # ETH_P_ALL: a protocol-bound socket sees nothing on a bridge port (c0 with two
        # inside hosts); frames sent from this host are skipped below.
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        s.bind((dev, 0))
        end = time.time() + secs
        while (left := end - time.time()) > 0:
            if not select.select([s], [], [], left)[0]:
                break
            f, addr = s.recvfrom(4096)
            if addr[2] == socket.PACKET_OUTGOING or f[12:14] != b"\x08\x00":
                continue
            ip = f[14:]
            if len(ip) < 20 or ip[9] not in (6, 17):
                continue
            hl = (ip[0] & 15) * 4
            l4 = ip[hl:]
            if len(l4) < 4 or struct.unpack("!H", l4[2:4])[0] != port:
                continue
            off = 8 if ip[9] == 17 else 20  # the probes' own TCP headers are 20 bytes
            total = struct.unpack("!H", ip[2:4])[0]
            print(ip[hl + off:total].decode(errors="replace"), flush=True)
    elif cmd == "fragflood":
        net, dst, n, secs = argv[2], argv[3], int(argv[4]), float(argv[5])
        r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        payload = bytes(1000)
        end = time.monotonic() + secs
        sent = 0
        for i in range(n):
            if i % 1000 == 0 and time.monotonic() > end:
                break
            d = i // 60  # 60 fragments per datagram, none overlapping, none the first
            src = socket.inet_aton(f"{net}.{d % 250 + 1}")
            ident, off = (d // 250) & 0xFFFF, 125 * (1 + i % 60)  # offset in 8-byte units
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0x2000 | off,
                             64, 17, 0, src, socket.inet_aton(dst))
            ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
            try:
                r.sendto(ip + payload, (dst, 0))
                sent += 1
            except (BlockingIOError, OSError):
                pass
        print(sent, flush=True)
    elif cmd == "ttlflood":
        net, dst, n, secs = argv[2], argv[3], int(argv[4]), float(argv[5])
        r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        end = time.monotonic() + secs
        sent = 0
        for i in range(n):
            if i % 1000 == 0 and time.monotonic() > end:
                break
            src = socket.inet_aton(f"{net}.{100 + i % 100}")
            l4 = struct.pack("!HHHH", 33434 + i % 100, 33434, 8 + 4, 0) + b"ttl1"
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), i & 0xFFFF, 0, 1, 17, 0,
                             src, socket.inet_aton(dst))
            ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
            try:
                r.sendto(ip + l4, (dst, 0))
                sent += 1
            except OSError:
                pass
        print(sent, flush=True)
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

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * xgw steering program: IPv4 and ARP frames go to the AF_XDP socket of the
 * router's worker for (interface, rx queue); everything else (IPv6, LLDP, ...)
 * is passed to the kernel unchanged.
 *
 * XSKMAP key = slot * XGW_MAX_QUEUES + rx_queue_index, where slot is the
 * interface's position in `port_ifindex` (filled in by xgw, and again when a
 * port's device is created anew), so keys of different interfaces and queues
 * never collide. A frame whose key has no
 * socket (worker not up yet) falls back to XDP_PASS through the redirect
 * flags, so the interface is never black-holed.
 *
 * The same program is also xgw's transmit path on devices where AF_XDP runs in
 * copy mode (io::xdp_tx): a worker queues the frames it sends in its slot of the
 * memory-mapped `txq` map and runs this program on them with BPF_PROG_RUN in
 * live-frames mode; each run copies one queued frame into its page-pool page and
 * redirects it to the frame's egress ifindex, and the kernel hands the redirected
 * frames to the egress driver in bulk (no skb, one syscall per batch). It must be
 * this program, attached to the ports, and not a second one: a test run of a
 * program that is not attached anywhere adds it to the kernel's XDP dispatcher and
 * removes it again, two synchronize_rcu() per syscall (~20 ms each).
 *
 * NAT prefilter: on the NAT's outside port, an IPv4 TCP or UDP packet (unfragmented, no IP
 * options) to a pool address whose destination port has no mapping is dropped here, before
 * it costs a copy into a socket: `nat_ports` is the NAT's mapped-port bitmap itself
 * (nat::portmap, memory-mapped by xgw; the worker that creates a mapping sets its bit before
 * it forwards the packet that created it), `nat_pool` gives a pool address's index in it.
 * It is the worker's own rule (dataplane::nat44 `miss`) moved forward: no mapping means no
 * session and nothing filtering could admit; a bare TCP SYN still goes to the worker (the
 * slow path holds it, RFC 5382 REQ-4), as does everything else: fragments, IP options,
 * short headers, ICMP. `nat_outside_ifindex` 0 turns it off.
 *
 * Kernel mirror mode (`[kernel] mirror = true`, `host_path` set): the kernel of the
 * namespace owns the addresses and ARP, so ARP, every frame to an Ethernet multicast or
 * broadcast address (OSPF hellos, DHCP) and every IPv4 packet to one of the host's
 * addresses (`host_addrs`: the namespace's addresses but the NAT pool's) go to the kernel:
 * BGP, OSPF, BFD, SSH and ping to the router are the kernel's. Only transit traffic
 * reaches the workers.
 *
 * A transmit run is told from a received frame by its ingress device: the worker
 * runs it "received" on the loopback device (ifindex 1 in every network namespace),
 * to which this program is never attached (xgw refuses lo as a port), so no frame
 * from the wire can pose as one. Its initial length (restored by the kernel before
 * every run) is XGW_TX_BASE_LEN + the worker's slot.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define XGW_MAX_PORTS 16
#define XGW_MAX_QUEUES 64

/* Must match io::xdp_tx. */
#define XGW_LOOPBACK_IFINDEX 1
#define XGW_TX_BASE_LEN 64
#define XGW_TXQ_BYTES (1 << 18)
/* The largest frame a live-frames page holds: a 4096-byte page less the test run's page
 * head (two xdp_buffs), XDP_PACKET_HEADROOM (256) and the skb_shared_info tailroom. */
#define XGW_TX_FRAME_MAX 3392
#define XGW_TX_HDR 8

/*
 * One worker's transmit queue. Entries are packed from q[0], each 8-byte aligned:
 *   u16 len | u16 reserved | u32 egress ifindex | len bytes of frame | pad to 8.
 * The worker writes n entries, sets `off` to 0 and runs the program with repeat = n;
 * run i sends entry i. Entries start below XGW_TXQ_BYTES and q has room for one
 * maximal entry past that, so the masked offset below keeps every access in bounds
 * (which is what the verifier checks).
 */
struct xgw_txq {
	__u32 off;
	__u32 reserved;
	/* Entries dropped: [0] bad length, [1] resize failed, [2] copy failed. */
	__u64 errors[3];
	__u8 q[XGW_TXQ_BYTES + XGW_TX_HDR + XGW_TX_FRAME_MAX + 8];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1); /* xgw sets the worker count before load */
	__type(key, __u32);
	__type(value, struct xgw_txq);
} txq SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, XGW_MAX_PORTS * XGW_MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

/* The ifindex of each port, by slot, then zeros; set by xgw before attaching, and again
 * when a port's device is deleted and created anew (a new ifindex). Writable (.bss, read
 * through its mmap by xgw and directly here), so one load and compare per port. */
volatile __u32 port_ifindex[XGW_MAX_PORTS];

/* Kernel mirror mode (see the top of the file). */
const volatile __u32 host_path = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1); /* xgw sets the size before load */
	__type(key, __u32);   /* a host address, network byte order */
	__type(value, __u8);
} host_addrs SEC(".maps");

/* NAT prefilter (see the top of the file). Sizes set by xgw before load. */
/* The outside port's ifindex (0: no prefilter); follows a re-created device as above. */
volatile __u32 nat_outside_ifindex = 0;
/* 64-bit words per (pool address, protocol): must match nat::portmap. */
#define XGW_PORT_WORDS (65536 / 64)

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u32);   /* pool address, network byte order */
	__type(value, __u32); /* its index in the pool */
} nat_pool SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	/* word (index * 2 + (UDP ? 1 : 0)) * XGW_PORT_WORDS + port / 64, bit port % 64 */
	__type(value, __u64);
} nat_ports SEC(".maps");

/* Per-CPU counters: frames left to the kernel, [0] not IPv4/ARP, [1] not from a port;
 * [2] dropped by the NAT prefilter; [3] left to the kernel because no socket serves their
 * (port, RX queue) (a worker not up yet, or a queue xgw does not serve: xgw refuses to
 * start with fewer queues than a port has, so this counts only the start and the stop);
 * [4] host traffic passed to the kernel in mirror mode (ARP, multicast, to its addresses).
 * Frames steered to a socket are not counted here (the workers count what they receive). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 5);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline int pass(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);
	if (v)
		*v += 1;
	return XDP_PASS;
}

/* A transmit run (see the top of the file): send the next entry of the worker's queue. */
static __always_inline int xgw_tx(struct xdp_md *ctx)
{
	__u32 slot = (__u32)bpf_xdp_get_buff_len(ctx) - XGW_TX_BASE_LEN;
	struct xgw_txq *t = bpf_map_lookup_elem(&txq, &slot);

	if (!t)
		return XDP_DROP;
	__u32 off = t->off & (XGW_TXQ_BYTES - 1);
	__u32 len = *(__u16 *)&t->q[off];
	__u32 ifindex = *(__u32 *)&t->q[off + 4];

	if (len < 14 || len > XGW_TX_FRAME_MAX) {
		t->errors[0]++;
		return XDP_DROP;
	}
	t->off = off + XGW_TX_HDR + ((len + 7) & ~7U);
	int delta = (int)len - (int)bpf_xdp_get_buff_len(ctx);
	if (delta && bpf_xdp_adjust_tail(ctx, delta)) {
		t->errors[1]++;
		return XDP_DROP;
	}
	if (bpf_xdp_store_bytes(ctx, 0, &t->q[off + XGW_TX_HDR], len)) {
		t->errors[2]++;
		return XDP_DROP;
	}
	return bpf_redirect(ifindex, 0);
}

/* Mirror mode: true if the frame is the host's (see the top of the file). */
static __always_inline int for_host(struct ethhdr *eth, void *data_end)
{
	if (eth->h_proto == bpf_htons(ETH_P_ARP) || (eth->h_dest[0] & 1))
		return 1;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > data_end)
		return 0; /* a runt: the workers count and drop it */
	__u32 daddr = ip->daddr;

	return bpf_map_lookup_elem(&host_addrs, &daddr) != 0;
}

/* The NAT prefilter: true if the frame is to be dropped (see the top of the file). */
static __always_inline int nat_unmapped(void *data, void *data_end)
{
	struct iphdr *ip = data + sizeof(struct ethhdr);
	__u8 *l4 = (void *)(ip + 1);

	/* Ports, and for TCP the flags byte (offset 13). */
	if ((void *)(l4 + 14) > data_end || ip->version != 4 || ip->ihl != 5 ||
	    (ip->frag_off & bpf_htons(0x3fff)))
		return 0;
	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
		return 0;
	if (ip->protocol == IPPROTO_TCP && (l4[13] & 0x16) == 0x02)
		return 0; /* a bare SYN (SYN without ACK or RST): the REQ-4 hold */
	__u32 daddr = ip->daddr;
	__u32 *idx = bpf_map_lookup_elem(&nat_pool, &daddr);

	if (!idx)
		return 0;
	__u16 port = bpf_ntohs(*(__u16 *)(l4 + 2));
	__u32 word = (*idx * 2 + (ip->protocol == IPPROTO_UDP)) * XGW_PORT_WORDS + port / 64;
	__u64 *w = bpf_map_lookup_elem(&nat_ports, &word);

	/* One aligned 8-byte load (volatile: read once, as an atomic relaxed load is; clang 14
	 * has no BPF atomic load). A worker may set the bit concurrently, for a mapping whose
	 * first packet has not left yet: then either answer is right. */
	return w && !(*(volatile __u64 *)w & (1ULL << (port % 64)));
}

SEC("xdp")
int xgw_steer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 ifindex = ctx->ingress_ifindex;

	if (ifindex == XGW_LOOPBACK_IFINDEX)
		return xgw_tx(ctx);

	if ((void *)(eth + 1) > data_end)
		return pass(0);
	if (eth->h_proto != bpf_htons(ETH_P_IP) && eth->h_proto != bpf_htons(ETH_P_ARP))
		return pass(0);
#pragma unroll
	for (__u32 slot = 0; slot < XGW_MAX_PORTS; slot++) {
		if (port_ifindex[slot] == 0)
			break;
		if (port_ifindex[slot] != ifindex)
			continue;
		if (host_path && for_host(eth, data_end))
			return pass(4);
		if (nat_outside_ifindex == ifindex && eth->h_proto == bpf_htons(ETH_P_IP) &&
		    nat_unmapped(data, data_end)) {
			__u32 idx = 2;
			__u64 *v = bpf_map_lookup_elem(&stats, &idx);

			if (v)
				*v += 1;
			return XDP_DROP;
		}
		/* The fallback action comes back when the key has no socket. */
		int act = bpf_redirect_map(&xsks, slot * XGW_MAX_QUEUES + ctx->rx_queue_index,
					   XDP_PASS);
		if (act == XDP_PASS)
			return pass(3);
		return act;
	}
	return pass(1);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

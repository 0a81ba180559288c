// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Benchmark helpers for `xgw loadgen` (scripts/bench.sh), not part of the router:
 *
 *  xgw_gen   traffic generator, run by BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES,
 *            "received" on the loopback device (ifindex 1). Live frames come from a page pool
 *            whose pages keep whatever the last user wrote (the kernel's forwarding path
 *            rewrites MACs and TTL in place), so every run writes the whole frame from the
 *            template, then stamps the flow's UDP source port, and redirects it out of the
 *            generator's interface. The program is also attached to that interface while it
 *            runs (frames it really receives are passed on): a test run of a program attached
 *            nowhere adds it to the kernel's XDP dispatcher and removes it again, two
 *            synchronize_rcu() under the dispatcher's global mutex, which would stall every
 *            other XDP test run on the machine (xgw's transmit path is one) for milliseconds.
 *  xgw_sink  on the sink's interface: counts and drops the benchmark's UDP frames (dport
 *            `dport`), passes everything else (ARP) to the kernel.
 *  xgw_pass  XDP_PASS, so that frames redirected into a veth are accepted by its peer when
 *            the kernel does the forwarding.
 *  xgw_fwd   the in-kernel reference forwarder: bpf_fib_lookup + bpf_redirect, TTL
 *            decremented with an incremental checksum update (as samples/bpf/xdp_fwd).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define AF_INET 2
#define GEN_LEN 60 /* a 64-byte Ethernet frame without its FCS */

/* The generator's frame: filled in by userspace before load (checksums included). */
const volatile __u64 tmpl[8];
const volatile __u32 flows = 1;
const volatile __u16 sport_base = 1024;
const volatile __u16 dport = 9;
/* Generator: also stamp the flow's port as the destination port (a port scan of DST). */
const volatile __u8 vary_dport = 0;
/* Generator: source addresses src, src + 1, ..., src + src_hosts - 1, one per run in turn
 * (the flow's port advances once per round of hosts), so with src_hosts > 1 every frame of
 * the first src_hosts * flows is a new flow (the connection-rate benchmark). */
const volatile __u32 src_hosts = 1;
/* The generator's interface (where frames go). */
const volatile __u32 gen_ifindex = 0;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} gen_runs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} sink_frames SEC(".maps");

SEC("xdp")
int xgw_gen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 zero = 0;

	if (ctx->ingress_ifindex != 1)
		return XDP_PASS; /* a frame the interface really received */
	__u64 *runs = bpf_map_lookup_elem(&gen_runs, &zero);

	if (!runs || data + GEN_LEN > data_end)
		return XDP_ABORTED;
	__u64 *w = data;
#pragma unroll
	for (int i = 0; i < 7; i++)
		w[i] = tmpl[i];
	*(__u32 *)(data + 56) = (__u32)tmpl[7];
	/* UDP checksum is 0 (none), so the source port can change freely. */
	struct udphdr *udp = data + sizeof(struct ethhdr) + sizeof(struct iphdr);
	__u64 flow = *runs;

	if (src_hosts > 1) {
		struct iphdr *ip = data + sizeof(struct ethhdr);
		__u32 base = bpf_ntohl(ip->saddr);
		__u32 src = base + (__u32)(flow % src_hosts);
		/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), over the two 16-bit halves. */
		__u32 sum = (~bpf_ntohs(ip->check)) & 0xffff;

		sum += (~base >> 16) & 0xffff;
		sum += ~base & 0xffff;
		sum += src >> 16;
		sum += src & 0xffff;
		sum = (sum & 0xffff) + (sum >> 16);
		sum = (sum & 0xffff) + (sum >> 16);
		ip->saddr = bpf_htonl(src);
		ip->check = bpf_htons(~sum & 0xffff);
		flow /= src_hosts;
	}
	udp->source = bpf_htons(sport_base + (__u16)(flow % flows));
	if (vary_dport)
		udp->dest = udp->source;
	*runs += 1;
	return bpf_redirect(gen_ifindex, 0);
}

SEC("xdp")
int xgw_sink(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	__u32 zero = 0;

	if ((void *)(udp + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ip->ihl != 5 || ip->protocol != IPPROTO_UDP || udp->dest != bpf_htons(dport))
		return XDP_PASS;
	__u64 *n = bpf_map_lookup_elem(&sink_frames, &zero);
	if (n)
		*n += 1;
	return XDP_DROP;
}

SEC("xdp")
int xgw_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

/* RFC 1624 incremental update for the TTL decrement (as the kernel's ip_decrease_ttl). */
static __always_inline void ttl_decrement(struct iphdr *ip)
{
	__u32 check = ip->check;
	check += bpf_htons(0x0100);
	ip->check = (__u16)(check + (check >= 0xFFFF));
	ip->ttl--;
}

SEC("xdp")
int xgw_fwd(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct bpf_fib_lookup fib = {};

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->ttl <= 1)
		return XDP_PASS; /* the kernel sends Time Exceeded */
	fib.family = AF_INET;
	fib.tos = ip->tos;
	fib.l4_protocol = ip->protocol;
	fib.tot_len = bpf_ntohs(ip->tot_len);
	fib.ipv4_src = ip->saddr;
	fib.ipv4_dst = ip->daddr;
	fib.ifindex = ctx->ingress_ifindex;
	if (bpf_fib_lookup(ctx, &fib, sizeof(fib), 0) != BPF_FIB_LKUP_RET_SUCCESS)
		return XDP_PASS; /* no route, no neighbour, local: the kernel's business */
	ttl_decrement(ip);
	__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
	return bpf_redirect(fib.ifindex, 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

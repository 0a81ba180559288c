// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * xgw steering program: IPv4 and ARP frames go to the AF_XDP socket of the
 * router's worker for (interface, rx queue); everything else (IPv6, LLDP, ...)
 * is passed to the kernel unchanged.
 *
 * XSKMAP key = port_base[ifindex] + rx_queue_index. `port_base` is filled by
 * xgw with slot * XGW_MAX_QUEUES for each interface it owns, so keys of
 * different interfaces and queues never collide. A frame whose slot has no
 * socket (worker not up yet) falls back to XDP_PASS through the redirect
 * flags, so the interface is never black-holed.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define XGW_MAX_PORTS 16
#define XGW_MAX_QUEUES 64

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, XGW_MAX_PORTS * XGW_MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XGW_MAX_PORTS);
	__type(key, __u32);   /* ifindex */
	__type(value, __u32); /* slot * XGW_MAX_QUEUES */
} port_base SEC(".maps");

/* Per-CPU counters: [0] redirected, [1] passed (not ours), [2] no port. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);
	if (v)
		*v += 1;
}

SEC("xdp")
int xgw_steer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end) {
		count(1);
		return XDP_PASS;
	}
	if (eth->h_proto != bpf_htons(ETH_P_IP) && eth->h_proto != bpf_htons(ETH_P_ARP)) {
		count(1);
		return XDP_PASS;
	}
	__u32 ifindex = ctx->ingress_ifindex;
	__u32 *base = bpf_map_lookup_elem(&port_base, &ifindex);
	if (!base) {
		count(2);
		return XDP_PASS;
	}
	__u32 key = *base + ctx->rx_queue_index;
	count(0);
	return bpf_redirect_map(&xsks, key, XDP_PASS);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

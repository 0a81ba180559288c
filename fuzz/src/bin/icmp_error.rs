//! AFL++ entry point of the `icmp_error` target (see `xgw_fuzz::icmp_error`).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        xgw_fuzz::icmp_error(data);
    });
}

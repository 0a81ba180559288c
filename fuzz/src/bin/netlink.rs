//! AFL++ entry point of the `netlink` target (see `xgw_fuzz::netlink`).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        xgw_fuzz::netlink(data);
    });
}

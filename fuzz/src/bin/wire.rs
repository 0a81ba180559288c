//! AFL++ entry point of the `wire` target (see `xgw_fuzz::wire`).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        xgw_fuzz::wire(data);
    });
}

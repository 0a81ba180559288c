//! AFL++ entry point of the `pipeline` target (see `xgw_fuzz::pipeline`).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        xgw_fuzz::pipeline(data);
    });
}

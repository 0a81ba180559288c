//! AFL++ entry point of the `mirror` target (see `xgw_fuzz::mirror`).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        xgw_fuzz::mirror(data);
    });
}

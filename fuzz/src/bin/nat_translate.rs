//! AFL++ entry point of the `nat_translate` target (see `xgw_fuzz::nat_translate`).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        xgw_fuzz::nat_translate(data);
    });
}

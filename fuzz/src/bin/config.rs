//! AFL++ entry point of the `config` target (see `xgw_fuzz::config`).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        xgw_fuzz::config(data);
    });
}

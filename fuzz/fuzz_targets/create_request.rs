//! `CreatePressRelease` and `ImportPressReleases` items: protobuf decoding,
//! then the content checks, normalising and HTML sanitising.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pressroom_fuzz::checks;

fuzz_target!(|data: &[u8]| {
    checks::create_request(data);
    checks::import_request(data);
});

//! `UpdatePressRelease`: protobuf decoding, the name, the field mask, the
//! patch applied to a stored release, and the content checks of the result.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pressroom_fuzz::checks;

fuzz_target!(|data: &[u8]| checks::update_request(data));

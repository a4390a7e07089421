#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| umount_wait_fuzz::verdict(data));

//! A checkpoint image file (inventory or task), decoded and validated.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| corral_checkpoint::image::fuzz_image(data));

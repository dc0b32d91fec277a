//! Compiles the API in `proto/` without a system `protoc`: protox parses the
//! files into a descriptor set, which is written out for server reflection,
//! handed to tonic-prost-build for the Rust messages, server and client, and
//! to pbjson-build for the proto3 JSON mapping (serde) of every message.

use std::{env, fs, path::PathBuf};

use prost::Message as _;

const PROTOS: &[&str] = &[
    "pressroom/v1/press_release.proto",
    "pressroom/v1/press_release_service.proto",
    "pressroom/v1/subscription_service.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);

    let descriptors = protox::compile(PROTOS, ["proto"])?;
    fs::write(
        out_dir.join("pressroom_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;

    let encoded = descriptors.encode_to_vec();
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Well-known types from pbjson-types, which carry the proto3 JSON
        // mapping, so that every message has it (pbjson below).
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        .compile_fds(descriptors)?;
    pbjson_build::Builder::new()
        .register_descriptors(&encoded)?
        .build(&[".pressroom"])?;
    Ok(())
}

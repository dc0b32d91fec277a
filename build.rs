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

/// The codec of every generated server and client (`src/proto/codec.rs`).
const CODEC: &str = "crate::proto::codec::Codec";

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
        .codec_path(CODEC)
        .compile_fds(descriptors.clone())?;
    // The server side of the subscription stream again, with its response
    // as `crate::proto::wire`'s twin: the same message on the wire, whose
    // press release is the stored bytes copied, never decoded and encoded
    // again. Every other type is the one generated above.
    let wire = out_dir.join("wire");
    fs::create_dir_all(&wire)?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .out_dir(&wire)
        .codec_path(CODEC)
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        .extern_path(".pressroom.v1", "crate::proto::v1")
        .extern_path(
            ".pressroom.v1.StreamSubscriptionResponse",
            "crate::proto::wire::StreamSubscriptionResponse",
        )
        .compile_fds(descriptors)?;
    pbjson_build::Builder::new()
        .register_descriptors(&encoded)?
        .build(&[".pressroom"])?;
    Ok(())
}

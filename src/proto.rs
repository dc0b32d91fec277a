//! The `pressroom.v1` API as generated from `proto/` by `build.rs`: the
//! prost messages (which are also the records kept on disk), the tonic server
//! and client, and the encoded descriptor set that server reflection serves.

/// Package `pressroom.v1`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("pressroom.v1");
}

/// The encoded `FileDescriptorSet` of every file in `proto/`, with imports.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/pressroom_descriptor.bin"));

//! The codec of every generated server and client: tonic-prost's, with two
//! changes measured on the subscription stream (issue 18, BENCHMARKS.md),
//! whose messages carry up to 50 releases each.
//!
//! - A message is encoded into room reserved once for its whole length;
//!   tonic-prost's encoder lets the buffer grow as it writes, which copies a
//!   large message several times over.
//! - A message is decoded from one contiguous `Bytes`, taken from tonic's
//!   buffer without a copy; tonic-prost's decoder reads through tonic's
//!   buffer, whose every advance (one per field) costs several times a
//!   slice's.

use std::marker::PhantomData;

use bytes::Buf as _;
use prost::Message;
use tonic::{
    Status,
    codec::{DecodeBuf, EncodeBuf},
};

/// A [`tonic::codec::Codec`] for prost messages (the generated code names
/// it through `codec_path` in `build.rs`).
#[derive(Debug, Clone)]
pub struct Codec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for Codec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> tonic::codec::Codec for Codec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = Encoder<T>;
    type Decoder = Decoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        Encoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        Decoder(PhantomData)
    }
}

/// Encodes a message into room reserved for all of it.
#[derive(Debug, Clone)]
pub struct Encoder<T>(PhantomData<T>);

impl<T: Message> tonic::codec::Encoder for Encoder<T> {
    type Item = T;
    type Error = Status;

    fn encode(&mut self, item: T, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.reserve(item.encoded_len());
        // The buffer grows on demand, so this cannot run out of room.
        item.encode(buf)
            .map_err(|error| Status::internal(format!("cannot encode a message: {error}")))
    }
}

/// Decodes a message from one contiguous buffer.
#[derive(Debug, Clone)]
pub struct Decoder<U>(PhantomData<U>);

impl<U: Message + Default> tonic::codec::Decoder for Decoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        let message = buf.copy_to_bytes(buf.remaining());
        // As tonic-prost: a message that does not parse is INTERNAL
        // (https://github.com/grpc/grpc/blob/master/doc/statuscodes.md).
        U::decode(message)
            .map(Some)
            .map_err(|error| Status::internal(error.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use tokio_stream::StreamExt as _;
    use tonic::codec::{Codec as _, EncodeBody, SingleMessageCompressionOverride, Streaming};

    use super::*;
    use crate::proto::v1::{ListPressReleasesResponse, PressRelease};

    /// What a client decodes from the frames a server encoded `messages` into.
    async fn through_a_stream<T, U>(messages: Vec<T>) -> Vec<Result<U, Status>>
    where
        T: Message + Send + 'static,
        U: Message + Default + Send + 'static,
    {
        let body = EncodeBody::new_server(
            Codec::<T, U>::default().encoder(),
            tokio_stream::iter(messages.into_iter().map(Ok)),
            None,
            SingleMessageCompressionOverride::default(),
            None,
        );
        let stream = Streaming::new_request(Codec::<T, U>::default().decoder(), body, None, None);
        stream.collect().await
    }

    #[tokio::test]
    async fn large_and_small_messages_round_trip_and_junk_is_internal() {
        let release = PressRelease {
            name: "pressReleases/1".into(),
            headline: "x".repeat(100_000),
            ..Default::default()
        };
        // Larger than tonic's buffer, then empty, then small.
        let messages = vec![
            ListPressReleasesResponse {
                press_releases: vec![release; 3],
                ..Default::default()
            },
            ListPressReleasesResponse::default(),
            ListPressReleasesResponse {
                press_releases: vec![PressRelease::default()],
                next_page_token: "t".into(),
            },
        ];
        let got: Vec<_> = through_a_stream(messages.clone()).await;
        let got: Vec<_> = got.into_iter().map(|m| m.map_err(|s| s.code())).collect();
        assert_eq!(got, messages.into_iter().map(Ok).collect::<Vec<_>>());

        // A varint where a message is expected does not parse.
        let junk = crate::proto::Timestamp {
            seconds: 1,
            nanos: 0,
        };
        let got: Vec<Result<ListPressReleasesResponse, Status>> =
            through_a_stream(vec![junk]).await;
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].as_ref().map_err(|s| s.code()).err(),
            Some(tonic::Code::Internal)
        );
    }
}

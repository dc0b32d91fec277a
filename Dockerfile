# syntax=docker/dockerfile:1
#
# Pressroom container image.
#
#   docker build -t ghcr.io/example/pressroom:0.1.0 .
#
# Two stages: a Rust builder and a distroless runtime with only glibc, libgcc
# and CA certificates; no shell, no package manager. The runtime runs as the
# distroless `nonroot` user (65532:65532), the same ids the Kubernetes
# manifests in k8s/ use.
#
# Dependency caching without extra tools: the manifests, the build script and
# the proto files are copied first and built against stub sources, so the
# (slow) layer that compiles every dependency is reused until Cargo.toml,
# Cargo.lock, build.rs or proto/ change; an edit under src/ rebuilds only the
# pressroom crate itself.

# Rust 1.88 or newer (edition 2024, rust-version in Cargo.toml), on the same
# Debian release as the runtime image so the binary's glibc matches.
FROM rust:1-bookworm AS builder
WORKDIR /build

# 1. Dependencies only (cached layer).
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto ./proto
RUN mkdir -p src \
    && printf '//! stub\nfn main() {}\n' > src/main.rs \
    && printf '//! stub\n' > src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src

# 2. The crate itself. COPY keeps the files' own modification times, which can
# be older than the stub build, so drop the stub's fingerprints to make sure
# cargo rebuilds the pressroom crate from the real sources.
COPY src ./src
RUN find target/release/.fingerprint -maxdepth 1 -name 'pressroom-*' -exec rm -rf {} + \
    && cargo build --release --locked \
    && install -D -m 0755 target/release/pressroom /out/usr/local/bin/pressroom \
    && install -d -m 0750 /out/var/lib/pressroom

FROM gcr.io/distroless/cc-debian12:nonroot

LABEL org.opencontainers.image.title="pressroom" \
      org.opencontainers.image.description="gRPC service that stores, retrieves and streams press releases (embedded sled database)" \
      org.opencontainers.image.licenses="Apache-2.0"

COPY --from=builder /out/usr/local/bin/pressroom /usr/local/bin/pressroom
# The data directory, owned by the runtime user, so the image also works
# without a volume (for a try-out); in Kubernetes a PersistentVolume is
# mounted here.
COPY --from=builder --chown=65532:65532 /out/var/lib/pressroom /var/lib/pressroom

# Defaults that suit the manifests in k8s/. Listening on all interfaces is
# safe as a default: `pressroom serve` refuses a non-loopback address unless a
# keys file (PRESSROOM_KEYS_FILE) is configured or --insecure is given.
ENV PRESSROOM_DATA_DIR=/var/lib/pressroom \
    PRESSROOM_LISTEN=0.0.0.0:50051 \
    PRESSROOM_LOG_FORMAT=json

# gRPC, plaintext grpc.health.v1 (when PRESSROOM_HEALTH_LISTEN is set),
# Prometheus metrics (when PRESSROOM_METRICS_LISTEN is set).
EXPOSE 50051 50052 9090

USER 65532:65532
WORKDIR /var/lib/pressroom
ENTRYPOINT ["/usr/local/bin/pressroom"]
CMD ["serve"]

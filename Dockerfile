# syntax=docker/dockerfile:1
# PromptLooper: one image with the server binary and the dashboard assets.
#   docker build -t promptlooper .
#   docker run -p 8400:8400 -v promptlooper-data:/data promptlooper

FROM rust:1.95-bookworm AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm && rm -rf /var/lib/apt/lists/*
ENV CARGO_TARGET_DIR=/src/target PL_TOOLS=/opt/tools
COPY . .
# Installs the wasm32 target and the wasm-bindgen CLI matching Cargo.lock, then builds the
# release server and the optimised WASM bundle (scripts/build-site.sh release).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,id=pl-target \
    --mount=type=cache,target=/opt/tools,id=pl-tools \
    scripts/ensure-tools.sh \
 && cargo build --release --locked -p server \
 && SITE_DIR=/out/site scripts/build-site.sh release \
 && cp target/release/promptlooper /out/promptlooper \
 && strip /out/promptlooper

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /data promptlooper \
 && mkdir -p /data && chown promptlooper /data
COPY --from=build /out/promptlooper /usr/local/bin/promptlooper
COPY --from=build /out/site /app/site
ENV HOST=0.0.0.0 PORT=8400 DATA_DIR=/data LEPTOS_SITE_ROOT=/app/site LOG_FORMAT=json
USER promptlooper
VOLUME ["/data"]
EXPOSE 8400 8401
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD curl -fsS "http://127.0.0.1:${PORT}/health" >/dev/null || exit 1
ENTRYPOINT ["promptlooper"]
CMD ["serve"]

# syntax=docker/dockerfile:1

# rollcall container image: a static Go binary on distroless, running as
# the unprivileged "nonroot" user (65532).
#
#   docker build -t rollcall:dev \
#     --build-arg VERSION=$(git describe --tags --always) \
#     --build-arg COMMIT=$(git rev-parse HEAD) .

ARG GO_VERSION=1.26.8

# The builder runs on the build host's platform and cross-compiles, so a
# multi-arch build (docker buildx --platform linux/amd64,linux/arm64) does
# not emulate the Go toolchain.
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build

# Never let the go command fetch a different toolchain during the build.
ENV GOTOOLCHAIN=local CGO_ENABLED=0
WORKDIR /src

# Dependencies first, in their own layer: it is rebuilt only when go.mod or
# go.sum change, not on every source edit.
COPY go.mod go.sum ./
RUN go mod download && go mod verify

# Only the Go packages: local state, event files and secrets in the work
# tree can never end up in an image (no .dockerignore needed).
COPY cmd ./cmd
COPY poller ./poller
COPY diff ./diff
COPY sink ./sink
COPY schema ./schema

ARG VERSION=dev
ARG COMMIT=unknown
# Set by BuildKit from --platform; the fallbacks cover a plain build.
ARG TARGETOS
ARG TARGETARCH
RUN --mount=type=cache,target=/root/.cache/go-build \
    GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH:-amd64} \
    go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/rollcall ./cmd/rollcall

# The state directory, owned by nonroot: distroless has no shell to create
# it. A fresh named volume mounted on /var/lib/rollcall takes this
# ownership, so the file state store is writable out of the box.
RUN mkdir -p /out/var/lib/rollcall


FROM gcr.io/distroless/static-debian12:nonroot

ARG VERSION=dev
ARG COMMIT=unknown
ARG SOURCE=https://github.com/rollcall-dev/rollcall
# SPDX expression. The repository has no LICENSE yet (the product owner's
# call): NOASSERTION until it does; pass --build-arg LICENSES=... then.
ARG LICENSES=NOASSERTION
LABEL org.opencontainers.image.title="rollcall" \
      org.opencontainers.image.description="Change feed of Tencent Cloud Chat audio-video group members: polls get_members and publishes member-joined/left CloudEvents to Kafka, NATS, files or stdout" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="${LICENSES}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}"

COPY --from=build --chown=65532:65532 /out/var/lib/rollcall /var/lib/rollcall
COPY --from=build /out/rollcall /rollcall

# "nonroot" in distroless, given numerically so that Kubernetes'
# runAsNonRoot can verify it without a runAsUser.
USER 65532:65532
# A relative state.path (the loader's default is "state") lands here. No
# VOLUME instruction: it would leave an anonymous volume behind on every
# `docker run`; mount a named volume or a PVC on /var/lib/rollcall instead.
WORKDIR /var/lib/rollcall
# /metrics, /healthz, /readyz. Set http.listen: 0.0.0.0:9464 in the config:
# the default 127.0.0.1:9464 is unreachable from outside the container.
EXPOSE 9464

ENTRYPOINT ["/rollcall"]
CMD ["run", "--config", "/etc/rollcall/rollcall.yaml"]

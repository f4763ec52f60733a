# moq-relay container image: the relay and moq-token on Debian bookworm-slim.
#
#   docker build -t moq-relay .
#   docker run --rm --network host --security-opt seccomp=unconfined \
#       -v /etc/moq-relay:/etc/moq-relay:ro moq-relay            # /etc/moq-relay/relay.toml
#   docker run --rm --network host --security-opt seccomp=unconfined \
#       moq-relay dev/relay.toml                                 # the development config
#
# The relay runs on io_uring (glommio). Docker 25 and later block the io_uring system calls in
# their default seccomp profile, so the container needs `--security-opt seccomp=unconfined` (or
# a profile that allows io_uring_setup, io_uring_enter and io_uring_register). Host networking
# keeps SO_REUSEPORT, UDP GSO/GRO and the client addresses as they are; with `-p`, publish the
# port for both protocols: `-p 4443:4443/udp -p 4443:4443/tcp`.

FROM rust:1-bookworm AS build
# quiche builds BoringSSL with cmake and generates its bindings with libclang.
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake libclang-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p moq-relay --bin moq-relay --bin moq-token \
    && install -m 0755 target/release/moq-relay target/release/moq-token /usr/local/bin/

FROM debian:bookworm-slim
RUN useradd --system --user-group --no-create-home --shell /usr/sbin/nologin moq-relay
COPY --from=build /usr/local/bin/moq-relay /usr/local/bin/moq-token /usr/local/bin/
# The development config and its key, for `moq-relay dev/relay.toml` from this directory.
WORKDIR /usr/share/moq-relay
COPY dev/ dev/
COPY config/relay.toml /usr/share/moq-relay/relay.toml.example
USER moq-relay
EXPOSE 4443/udp 4443/tcp
ENTRYPOINT ["/usr/local/bin/moq-relay"]
CMD ["/etc/moq-relay/relay.toml"]

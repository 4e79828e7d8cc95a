/* ENet at a steady rate, for framewire's bytes-per-message comparison: a sender of SIZE-byte
 * reliable messages at HZ a second for SECONDS, and a sink that receives them. Each message
 * carries its send time (CLOCK_MONOTONIC, shared by every process of the machine), so the sink
 * measures how long each took to arrive. What they cost on the wire is counted by whatever sits
 * between them (the comparison's lossy relay), not here.
 *
 *   rate sink SECONDS_AT_MOST
 *       prints "port P" once bound, then, when the sender disconnects (or at the deadline), one
 *       JSON line: delivered, bytes, p50_us, p99_us, max_us
 *   rate send HOST PORT SIZE HZ SECONDS
 *       prints "sending" once connected, sends, waits until everything sent has been
 *       acknowledged (enet_peer_disconnect_later), then one JSON line: sent, connected */
#include <enet/enet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_US 10000000 /* latencies above ten seconds are counted as ten seconds */

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int compare_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static int sink(double seconds) {
    ENetAddress address;
    enet_address_set_host(&address, "127.0.0.1");
    address.port = 0;
    ENetHost *host = enet_host_create(&address, 1, 1, 0, 0);
    if (host == NULL) return 1;
    printf("port %u\n", (unsigned)host->address.port);
    fflush(stdout);
    size_t cap = 1 << 16, n = 0;
    uint32_t *latencies = malloc(cap * sizeof *latencies);
    if (latencies == NULL) return 1;
    uint64_t bytes = 0;
    uint64_t deadline = now_ns() + (uint64_t)(seconds * 1e9);
    int done = 0;
    while (!done && now_ns() < deadline) {
        ENetEvent event;
        while (!done && enet_host_service(host, &event, 5) > 0) {
            if (event.type == ENET_EVENT_TYPE_RECEIVE) {
                uint64_t sent = 0;
                if (event.packet->dataLength >= 8) memcpy(&sent, event.packet->data, 8);
                uint64_t us = (now_ns() - sent) / 1000;
                if (n == cap) {
                    cap *= 2;
                    latencies = realloc(latencies, cap * sizeof *latencies);
                    if (latencies == NULL) return 1;
                }
                latencies[n++] = (uint32_t)(us > MAX_US ? MAX_US : us);
                bytes += event.packet->dataLength;
                enet_packet_destroy(event.packet);
            } else if (event.type == ENET_EVENT_TYPE_DISCONNECT) {
                done = 1;
            }
        }
    }
    qsort(latencies, n, sizeof *latencies, compare_u32);
    uint32_t p50 = n ? latencies[n / 2] : 0;
    uint32_t p99 = n ? latencies[(size_t)((double)(n - 1) * 0.99)] : 0;
    uint32_t max = n ? latencies[n - 1] : 0;
    printf("{\"delivered\":%zu,\"bytes\":%llu,\"p50_us\":%u,\"p99_us\":%u,\"max_us\":%u}\n", n,
           (unsigned long long)bytes, p50, p99, max);
    enet_host_destroy(host);
    return 0;
}

static int send_steadily(const char *host_name, int port, size_t size, double hz, double seconds) {
    ENetHost *host = enet_host_create(NULL, 1, 1, 0, 0);
    if (host == NULL) return 1;
    ENetAddress address;
    enet_address_set_host(&address, host_name);
    address.port = (enet_uint16)port;
    ENetPeer *peer = enet_host_connect(host, &address, 1, 0);
    if (peer == NULL) return 1;
    ENetEvent event;
    /* Through a lossy link the handshake may take a few of ENet's retries. */
    int connected = 0;
    uint64_t connect_by = now_ns() + 20000000000ull;
    while (!connected && now_ns() < connect_by) {
        if (enet_host_service(host, &event, 100) > 0) {
            if (event.type == ENET_EVENT_TYPE_CONNECT) connected = 1;
            else if (event.type == ENET_EVENT_TYPE_DISCONNECT) break;
        }
    }
    if (!connected) {
        printf("{\"sent\":0,\"connected\":false}\n");
        return 1;
    }
    printf("sending\n");
    fflush(stdout);
    unsigned char *payload = calloc(size, 1);
    if (payload == NULL) return 1;
    uint64_t total = (uint64_t)(hz * seconds);
    uint64_t interval = (uint64_t)(1e9 / hz);
    uint64_t next = now_ns();
    uint64_t sent = 0;
    while (sent < total) {
        uint64_t now = now_ns();
        if (now >= next) {
            memcpy(payload, &now, 8);
            ENetPacket *packet = enet_packet_create(payload, size, ENET_PACKET_FLAG_RELIABLE);
            if (packet == NULL || enet_peer_send(peer, 0, packet) < 0) return 1;
            sent++;
            next += interval;
            continue;
        }
        uint64_t wait_ms = (next - now) / 1000000;
        while (enet_host_service(host, &event, (enet_uint32)wait_ms) > 0) {
            if (event.type == ENET_EVENT_TYPE_RECEIVE) enet_packet_destroy(event.packet);
            wait_ms = 0;
        }
    }
    /* Everything queued goes out and is acknowledged before the disconnect is. */
    enet_peer_disconnect_later(peer, 0);
    uint64_t deadline = now_ns() + 60000000000ull;
    int gone = 0;
    while (!gone && now_ns() < deadline) {
        while (enet_host_service(host, &event, 5) > 0) {
            if (event.type == ENET_EVENT_TYPE_DISCONNECT) gone = 1;
            if (event.type == ENET_EVENT_TYPE_RECEIVE) enet_packet_destroy(event.packet);
        }
    }
    printf("{\"sent\":%llu,\"connected\":true,\"drained\":%s}\n", (unsigned long long)sent,
           gone ? "true" : "false");
    enet_host_destroy(host);
    return 0;
}

int main(int argc, char **argv) {
    if (enet_initialize() != 0) return 1;
    if (argc == 3 && strcmp(argv[1], "sink") == 0) return sink(atof(argv[2]));
    if (argc == 7 && strcmp(argv[1], "send") == 0) {
        size_t size = (size_t)atoi(argv[4]);
        double hz = atof(argv[5]), seconds = atof(argv[6]);
        if (size < 8 || hz <= 0 || seconds <= 0) {
            fprintf(stderr, "bad arguments\n");
            return 2;
        }
        return send_steadily(argv[2], atoi(argv[3]), size, hz, seconds);
    }
    fprintf(stderr, "usage: %s sink SECONDS_AT_MOST | send HOST PORT SIZE HZ SECONDS\n", argv[0]);
    return 2;
}

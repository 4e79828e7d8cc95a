/* ENet load generator for framewire's UDP comparison, measuring as `framewire bench` does: CLIENTS
 * connections (peers of one host), each keeping WINDOW messages of SIZE bytes in flight to an echo
 * server, each message carrying its send time; round trips counted after a warm-up of a fifth of
 * the run (at most a second). An unreliable window unanswered for a second is written off as lost.
 *
 *   bench_client HOST PORT CLIENTS WINDOW SIZE SECONDS reliable|unreliable
 *
 * Prints one JSON line: msgs_per_s, p50_us, p99_us, p999_us, errors. */
#include <enet/enet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_US 1000000 /* latencies above a second are counted as a second */

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t percentile(const uint32_t *counts, uint64_t total, double q) {
    uint64_t want = (uint64_t)(q * (double)total);
    uint64_t seen = 0;
    for (uint64_t us = 0; us <= MAX_US; us++) {
        seen += counts[us];
        if (seen > want) return us;
    }
    return MAX_US;
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: %s HOST PORT CLIENTS WINDOW SIZE SECONDS reliable|unreliable\n",
                argv[0]);
        return 2;
    }
    int clients = atoi(argv[3]);
    int window = atoi(argv[4]);
    size_t size = (size_t)atoi(argv[5]);
    double seconds = atof(argv[6]);
    int reliable = strcmp(argv[7], "reliable") == 0;
    if (clients < 1 || window < 1 || size < 8 || seconds <= 0) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    if (enet_initialize() != 0) return 1;
    ENetHost *host = enet_host_create(NULL, (size_t)clients, 2, 0, 0);
    if (host == NULL) return 1;
    ENetAddress address;
    enet_address_set_host(&address, argv[1]);
    address.port = (enet_uint16)atoi(argv[2]);
    ENetPeer **peers = calloc((size_t)clients, sizeof *peers);
    int *in_flight = calloc((size_t)clients, sizeof *in_flight);
    uint64_t *last_progress = calloc((size_t)clients, sizeof *last_progress);
    uint32_t *counts = calloc(MAX_US + 1, sizeof *counts);
    unsigned char *payload = calloc(size, 1);
    if (!peers || !in_flight || !last_progress || !counts || !payload) return 1;
    memset(payload, 0x5a, size);
    for (int i = 0; i < clients; i++) {
        peers[i] = enet_host_connect(host, &address, 2, 0);
        if (peers[i] == NULL) return 1;
        peers[i]->data = (void *)(intptr_t)i;
    }
    ENetEvent event;
    int connected = 0;
    uint64_t give_up = now_ns() + 10000000000u;
    while (connected < clients && now_ns() < give_up) {
        if (enet_host_service(host, &event, 10) > 0 && event.type == ENET_EVENT_TYPE_CONNECT)
            connected++;
    }
    if (connected < clients) {
        fprintf(stderr, "only %d of %d peers connected\n", connected, clients);
        return 1;
    }
    double warm = seconds / 5.0 < 1.0 ? seconds / 5.0 : 1.0;
    uint64_t start = now_ns();
    uint64_t measure_from = start + (uint64_t)(warm * 1e9);
    uint64_t end = measure_from + (uint64_t)(seconds * 1e9);
    uint64_t completed = 0, errors = 0;
    enet_uint32 flags = reliable ? ENET_PACKET_FLAG_RELIABLE : ENET_PACKET_FLAG_UNSEQUENCED;
    for (;;) {
        uint64_t t = now_ns();
        if (t >= end) break;
        for (int i = 0; i < clients; i++) {
            if (in_flight[i] > 0 && t - last_progress[i] > 1000000000u) {
                errors += (uint64_t)in_flight[i];
                in_flight[i] = 0;
            }
            while (in_flight[i] < window) {
                memcpy(payload, &t, sizeof t);
                enet_peer_send(peers[i], 0, enet_packet_create(payload, size, flags));
                if (in_flight[i] == 0) last_progress[i] = t;
                in_flight[i]++;
            }
        }
        int r = enet_host_service(host, &event, 1);
        while (r > 0) {
            if (event.type == ENET_EVENT_TYPE_RECEIVE) {
                int i = (int)(intptr_t)event.peer->data;
                uint64_t sent;
                uint64_t got = now_ns();
                memcpy(&sent, event.packet->data, sizeof sent);
                if (in_flight[i] > 0) in_flight[i]--;
                last_progress[i] = got;
                if (sent >= measure_from && got < end) {
                    uint64_t us = (got - sent) / 1000;
                    counts[us > MAX_US ? MAX_US : us]++;
                    completed++;
                }
                enet_packet_destroy(event.packet);
            } else if (event.type == ENET_EVENT_TYPE_DISCONNECT) {
                fprintf(stderr, "a peer was disconnected\n");
                return 1;
            }
            r = enet_host_check_events(host, &event);
        }
    }
    printf("{\"msgs_per_s\":%.0f,\"p50_us\":%llu,\"p99_us\":%llu,\"p999_us\":%llu,\"errors\":%llu}\n",
           (double)completed / seconds,
           (unsigned long long)percentile(counts, completed, 0.5),
           (unsigned long long)percentile(counts, completed, 0.99),
           (unsigned long long)percentile(counts, completed, 0.999),
           (unsigned long long)errors);
    for (int i = 0; i < clients; i++) enet_peer_disconnect_now(peers[i], 0);
    enet_host_destroy(host);
    return 0;
}

/* ENet echo server for framewire's UDP comparison: every packet a peer sends comes back to it on
 * the same channel, reliable if it came reliable, unsequenced if it came unsequenced.
 *
 *   echo_server PORT
 *
 * Serves 127.0.0.1:PORT until killed. Built by the comparison runner (cc -O2 ... -lenet). */
#include <enet/enet.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    if (enet_initialize() != 0) {
        fprintf(stderr, "enet_initialize failed\n");
        return 1;
    }
    ENetAddress address;
    enet_address_set_host(&address, "127.0.0.1");
    address.port = (enet_uint16)atoi(argv[1]);
    /* Up to 4095 peers (ENet's maximum), 2 channels, no bandwidth limits. */
    ENetHost *server = enet_host_create(&address, 4095, 2, 0, 0);
    if (server == NULL) {
        fprintf(stderr, "cannot serve on port %s\n", argv[1]);
        return 1;
    }
    ENetEvent event;
    for (;;) {
        int r = enet_host_service(server, &event, 100);
        while (r > 0) {
            if (event.type == ENET_EVENT_TYPE_RECEIVE) {
                enet_uint32 flags = event.packet->flags &
                                    (ENET_PACKET_FLAG_RELIABLE | ENET_PACKET_FLAG_UNSEQUENCED);
                ENetPacket *echo =
                    enet_packet_create(event.packet->data, event.packet->dataLength, flags);
                enet_peer_send(event.peer, event.channelID, echo);
                enet_packet_destroy(event.packet);
            }
            r = enet_host_check_events(server, &event);
        }
        if (r < 0) {
            fprintf(stderr, "enet_host_service failed\n");
            return 1;
        }
        enet_host_flush(server);
    }
}

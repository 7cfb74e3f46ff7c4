// SPDX-License-Identifier: MIT
// sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET.
#ifndef WA_SDNOTIFY_H
#define WA_SDNOTIFY_H

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Sends `state` ("READY=1", "WATCHDOG=1", "STOPPING=1", ...) to the socket
 * named by $NOTIFY_SOCKET. Returns 1 when sent, 0 when NOTIFY_SOCKET is unset
 * (not started by systemd with Type=notify), or -errno on failure.
 */
int wa_sd_notify(const char *state);

#ifdef __cplusplus
}
#endif

#endif

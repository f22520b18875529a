/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "client.h"

/*
 * One record from a client (c->userdata is its Server): decoded, checked, carried out,
 * answered. @error as ClientHandlers.record says.
 */
void dispatch_record(Client *c, const uint8_t *buf, size_t len, int error);

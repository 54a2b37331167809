/* SPDX-License-Identifier: MIT */
#pragma once

#include <getopt.h>

#include "authserver.h"

/* Options every verb takes: --db, --master-key, --config, --log-level. */
enum {
        ARG_DB = 0x100,
        ARG_MASTER_KEY,
        ARG_CONFIG,
        ARG_LOG_LEVEL,
};

#define COMMON_OPTIONS \
        { "help",       no_argument,       NULL, 'h' }, \
        { "db",         required_argument, NULL, ARG_DB }, \
        { "master-key", required_argument, NULL, ARG_MASTER_KEY }, \
        { "config",     required_argument, NULL, ARG_CONFIG }, \
        { "log-level",  required_argument, NULL, ARG_LOG_LEVEL }

/* 1 if opt was a common option and was applied; 0 if it is not one of them; -errno on a bad value. */
int common_option(struct config *c, int opt, const char *arg);

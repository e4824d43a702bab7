/*
 * quiesce/quiesce.h: every public header of libquiesce (check.h, the Check
 * integration, is separate: it needs Check and its own library).
 */
#ifndef QUIESCE_QUIESCE_H
#define QUIESCE_QUIESCE_H

#include <quiesce/census.h>
#include <quiesce/chan.h>
#include <quiesce/clock.h>
#include <quiesce/ctx.h>
#include <quiesce/faketime.h>
#include <quiesce/group.h>
#include <quiesce/harness.h>
#include <quiesce/time.h>
#include <quiesce/version.h>
#include <quiesce/wait.h>

#endif /* QUIESCE_QUIESCE_H */

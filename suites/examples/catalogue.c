/*
 * catalogue.c: the list of examples, in the order the README and the demo
 * present them.
 */
#include "example.h"

extern const qc_example ex_busy, ex_blocking_read, ex_result_send,
    ex_wrong_parent, ex_lost_cancel, ex_value_cancel, ex_stored_ctx, ex_fanout,
    ex_pool, ex_pipeline, ex_tcp_server, ex_nested_timeouts, ex_long_compute,
    ex_lib_thread, ex_timer_thread;

const qc_example *const ex_catalogue[] = {
    &ex_busy,	      &ex_blocking_read, &ex_result_send,  &ex_wrong_parent,
    &ex_lost_cancel,  &ex_value_cancel,	 &ex_stored_ctx,   &ex_fanout,
    &ex_pool,	      &ex_pipeline,	 &ex_tcp_server,   &ex_nested_timeouts,
    &ex_long_compute, &ex_lib_thread,	 &ex_timer_thread, NULL,
};

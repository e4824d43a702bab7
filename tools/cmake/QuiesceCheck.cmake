# QuiesceCheck.cmake: quiesce_add_check_suite(), one Check executable and its
# CTest tests. Used by quiesce's own suites and, installed next to
# quiesceConfig.cmake, by projects that find_package(quiesce).
#
#   quiesce_add_check_suite(<name> SOURCES <src>...
#                           [LIBRARIES <lib>...] [LABELS <label>...]
#                           [TIMEOUT <seconds>] [FAKETIME <spec>]
#                           [STATIC] [NO_VALGRIND])
#
# Builds executable <name> linked with quiesce::check, libquiesce (shared; the
# static one with STATIC), Check and Threads, and registers:
#   <prefix>.<short>            labels unit + LABELS, Check in fork mode
#   <prefix>.<short>.memcheck   under valgrind memcheck, label valgrind; only
#                               with QC_VALGRIND / QUIESCE_VALGRIND on and
#                               without NO_VALGRIND
#   <prefix>.<short>.helgrind   under valgrind helgrind (data races, lock
#                               order), label helgrind; only with QC_HELGRIND
#                               / QUIESCE_HELGRIND on and without NO_VALGRIND
#   <prefix>.<short>.faketime   under libfaketime with FAKETIME=<spec>,
#                               label faketime; only when FAKETIME is given
# <short> is <name> without a leading "check_", <prefix> is
# QUIESCE_TEST_PREFIX ("quiesce" unless set). Every test fails when Check ran
# zero checks, so a suite whose tests were never added cannot pass.
include_guard(GLOBAL)

if(NOT DEFINED QUIESCE_TEST_PREFIX)
  set(QUIESCE_TEST_PREFIX quiesce)
endif()
# Installed, quiesceConfig.cmake points this at the shipped file; in a source
# tree it sits beside this module.
if(NOT DEFINED QUIESCE_SUPPRESSIONS)
  set(QUIESCE_SUPPRESSIONS ${CMAKE_CURRENT_LIST_DIR}/quiesce.supp)
endif()
if(NOT DEFINED QUIESCE_HELGRIND_SUPPRESSIONS)
  set(QUIESCE_HELGRIND_SUPPRESSIONS
      ${CMAKE_CURRENT_LIST_DIR}/quiesce-helgrind.supp)
endif()
set(QUIESCE_VALGRIND OFF CACHE BOOL
    "Register a valgrind memcheck variant of every quiesce_add_check_suite()")
set(QUIESCE_HELGRIND OFF CACHE BOOL
    "Register a valgrind helgrind variant of every quiesce_add_check_suite()")
set(QUIESCE_FAKETIME_LIBRARY
    /usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1 CACHE FILEPATH
    "libfaketime (multi-threaded build) preloaded by the faketime variants")
find_program(QUIESCE_VALGRIND_EXECUTABLE valgrind)

# _quiesce_valgrind_test(<test> <tool> <labels> <timeout> <exe> <opts>...):
# registers <test>.<tool>, <exe> under valgrind's <tool> in Check's fork mode
# (children traced), failing on any error the tool reports or when no check
# ran. Everything runs ~20x slower under valgrind, hence the multipliers;
# QC_THREAD_STACK keeps thread stacks small, since valgrind has no option
# for the pthread default and tests with many threads exhaust its address
# space otherwise.
function(_quiesce_valgrind_test test tool labels timeout exe)
  add_test(NAME ${test}.${tool}
    COMMAND ${QUIESCE_VALGRIND_EXECUTABLE} --tool=${tool}
      --error-exitcode=99 --trace-children=yes --child-silent-after-fork=no
      --num-callers=30 --gen-suppressions=all ${ARGN} ${exe})
  set_tests_properties(${test}.${tool} PROPERTIES
    LABELS "${labels}" TIMEOUT ${timeout}
    ENVIRONMENT "CK_FORK=yes;QC_TIME_MULTIPLIER=20;CK_TIMEOUT_MULTIPLIER=20;QC_THREAD_STACK=262144"
    FAIL_REGULAR_EXPRESSION "Checks: 0,;ERROR SUMMARY: [1-9]")
endfunction()

function(quiesce_add_check_suite name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "STATIC;NO_VALGRIND"
                        "TIMEOUT;FAKETIME" "SOURCES;LIBRARIES;LABELS")
  if(NOT arg_SOURCES)
    message(FATAL_ERROR "quiesce_add_check_suite(${name}): SOURCES is required")
  endif()
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "quiesce_add_check_suite(${name}): unknown arguments "
                        "${arg_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT arg_TIMEOUT)
    set(arg_TIMEOUT 120)
  endif()

  add_executable(${name} ${arg_SOURCES})
  if(arg_STATIC)
    # quiesce::check follows this property, so the executable holds exactly
    # one copy of the library (and of its pthread_create interposer).
    set_property(TARGET ${name} PROPERTY QUIESCE_LINK_STATIC ON)
    set(lib quiesce::quiesce_static)
  else()
    set(lib quiesce::quiesce)
  endif()
  target_link_libraries(${name} PRIVATE
    quiesce::check ${lib} PkgConfig::CHECK Threads::Threads ${arg_LIBRARIES})
  if(TARGET qc_warnings) # in quiesce's own tree
    target_link_libraries(${name} PRIVATE qc_warnings)
  endif()

  string(REGEX REPLACE "^check_" "" short "${name}")
  set(test ${QUIESCE_TEST_PREFIX}.${short})
  # Check prints "100%: Checks: 0, Failures: 0, Errors: 0" and exits 0 when
  # no test was added; that must not pass. Valgrind's summary catches errors
  # in a forked child whose exit status Check might not pass on.
  set(fail_regex "Checks: 0,")
  set(sanitized FALSE)
  if(DEFINED QC_SANITIZE AND NOT QC_SANITIZE STREQUAL "none")
    set(sanitized TRUE)
  endif()

  set(unit_labels unit ${arg_LABELS})
  set(vg_labels valgrind ${arg_LABELS})
  set(hg_labels helgrind ${arg_LABELS})
  set(ft_labels faketime ${arg_LABELS})

  set(env CK_FORK=yes)
  if(sanitized)
    # Matches the library's own multiplier of 5 in sanitizer builds.
    list(APPEND env CK_TIMEOUT_MULTIPLIER=5)
  endif()
  add_test(NAME ${test} COMMAND ${name})
  set_tests_properties(${test} PROPERTIES
    LABELS "${unit_labels}" TIMEOUT ${arg_TIMEOUT}
    ENVIRONMENT "${env}" FAIL_REGULAR_EXPRESSION "${fail_regex}")

  set(want_memcheck FALSE)
  set(want_helgrind FALSE)
  if(NOT arg_NO_VALGRIND)
    if(QC_VALGRIND OR QUIESCE_VALGRIND)
      set(want_memcheck TRUE)
    endif()
    if(QC_HELGRIND OR QUIESCE_HELGRIND)
      set(want_helgrind TRUE)
    endif()
  endif()
  if((want_memcheck OR want_helgrind) AND NOT QUIESCE_VALGRIND_EXECUTABLE)
    message(FATAL_ERROR "quiesce_add_check_suite(${name}): valgrind not "
                        "found (Debian package 'valgrind')")
  endif()
  # Everything runs ~20x slower under valgrind; the cap keeps one hung
  # suite from eating CI's time budget.
  math(EXPR vg_timeout "${arg_TIMEOUT} * 20")
  if(vg_timeout GREATER 600)
    set(vg_timeout 600)
  endif()
  if(want_memcheck)
    _quiesce_valgrind_test(${test} memcheck "${vg_labels}" ${vg_timeout}
      $<TARGET_FILE:${name}>
      --leak-check=full --show-leak-kinds=definite,indirect,possible
      --errors-for-leak-kinds=definite,indirect,possible --track-fds=no
      --suppressions=${QUIESCE_SUPPRESSIONS})
  endif()
  # helgrind sees quiesce's own locks and atomic handoffs through the
  # library's annotations (harness/annotate.h, built with QC_ANNOTATE); a
  # race in the code under test, or in the test, is an error.
  if(want_helgrind)
    _quiesce_valgrind_test(${test} helgrind "${hg_labels}" ${vg_timeout}
      $<TARGET_FILE:${name}>
      --suppressions=${QUIESCE_HELGRIND_SUPPRESSIONS})
  endif()

  # A sanitized binary must have its runtime first in LD_PRELOAD, so the
  # faketime variant is left to unsanitized builds.
  if(DEFINED arg_FAKETIME AND NOT sanitized)
    add_test(NAME ${test}.faketime COMMAND ${name})
    set_tests_properties(${test}.faketime PROPERTIES
      LABELS "${ft_labels}" TIMEOUT ${arg_TIMEOUT}
      ENVIRONMENT "CK_FORK=yes;LD_PRELOAD=${QUIESCE_FAKETIME_LIBRARY};FAKETIME=${arg_FAKETIME};FAKETIME_NO_CACHE=1"
      FAIL_REGULAR_EXPRESSION "${fail_regex}")
  endif()
endfunction()

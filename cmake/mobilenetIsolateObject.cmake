# cmake -P: packs OBJECTS and the static ARCHIVES they need into one relocatable object, moves
# protobuf's C++ namespace aside (google::protobuf -> mnpriv::protobuf: same length, so the
# mangled names stay valid), makes every strong definition local but the one matching KEEP,
# and writes the object as the archive OUTPUT.
# Why: the onnx writer carries the system's protobuf, while a PyPI LibTorch exports its own
# protobuf 3.13 from libtorch_cpu; the two must not resolve each other's symbols. Debian's
# libprotobuf.a has non-PIC TLS (arena.o), so a shared library is not an option: a private
# object linked into the executable is. Weak definitions outside protobuf (libstdc++'s inline
# templates) stay global: they sit in COMDAT groups that the final link may share with the
# caller's objects, and a local symbol in a discarded group would dangle.
# Variables: LD OBJCOPY NM AR OUTPUT OBJECTS ARCHIVES KEEP WORK
cmake_minimum_required(VERSION 3.19)
set(combined ${WORK}/combined.o)
execute_process(COMMAND ${LD} -r -o ${combined} ${OBJECTS} ${ARCHIVES} COMMAND_ERROR_IS_FATAL ANY)
execute_process(COMMAND ${NM} ${combined} OUTPUT_VARIABLE symbols COMMAND_ERROR_IS_FATAL ANY)
string(REPLACE "\n" ";" lines "${symbols}")
set(renames "")
set(keep "${KEEP}\n")
foreach(line IN LISTS lines)
  if(NOT line MATCHES "^[0-9a-f ]* ([A-Za-z]) (.*)$")
    continue()
  endif()
  set(kind ${CMAKE_MATCH_1})
  set(name ${CMAKE_MATCH_2})
  if(name MATCHES "6google8protobuf")
    string(REPLACE "6google8protobuf" "6mnpriv8protobuf" renamed "${name}")
    string(APPEND renames "${name} ${renamed}\n")
  elseif(kind MATCHES "^[WV]$" AND NOT name MATCHES "mobilenet_onnx_pb")
    string(APPEND keep "${name}\n")
  elseif(kind STREQUAL "u")
    message(FATAL_ERROR "isolate: GNU-unique symbol outside protobuf, cannot hide: ${name}")
  endif()
endforeach()
file(WRITE ${WORK}/renames.txt "${renames}")
file(WRITE ${WORK}/keep.txt "${keep}")
execute_process(COMMAND ${OBJCOPY} --redefine-syms=${WORK}/renames.txt ${combined}
                COMMAND_ERROR_IS_FATAL ANY)
execute_process(COMMAND ${OBJCOPY} --wildcard --keep-global-symbols=${WORK}/keep.txt ${combined}
                COMMAND_ERROR_IS_FATAL ANY)
# Check: the only strong global definition is KEEP; nothing of protobuf's namespace is left.
execute_process(COMMAND ${NM} ${combined} OUTPUT_VARIABLE symbols COMMAND_ERROR_IS_FATAL ANY)
string(REPLACE "\n" ";" lines "${symbols}")
set(strong "")
foreach(line IN LISTS lines)
  if(line MATCHES "6google8protobuf")
    message(FATAL_ERROR "isolate: protobuf symbol left in its namespace: ${line}")
  elseif(line MATCHES "^[0-9a-f]* [A-TX-Z] (.*)$")
    list(APPEND strong ${CMAKE_MATCH_1})
  endif()
endforeach()
list(LENGTH strong count)
if(NOT count EQUAL 1)
  message(FATAL_ERROR "isolate: expected one strong global definition (${KEEP}), found: ${strong}")
endif()
file(REMOVE ${OUTPUT})
execute_process(COMMAND ${AR} qc ${OUTPUT} ${combined} COMMAND_ERROR_IS_FATAL ANY)

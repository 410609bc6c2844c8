# Fuzzing the image decoder and transform, the COCO parser and checkpoint loading (libFuzzer,
# clang only). Included from tests/CMakeLists.txt. A 60 s run of each is a CTest test labelled
# "fuzz" (CI runs them from a clang build of only these targets, see .ci/run);
# longer runs by hand, e.g.: ./fuzz_image -max_total_time=600 fuzz_image_corpus
if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  # mobilenet_fuzz(<name> <libFuzzer args>...): tests/fuzz/<name>.cpp, a scratch corpus
  # folder (libFuzzer adds interesting inputs to the first one) and a 60 s CTest run.
  function(mobilenet_fuzz name)
    add_executable(${name} ${CMAKE_CURRENT_LIST_DIR}/fuzz/${name}.cpp)
    target_link_libraries(${name} PRIVATE mobilenet_data)
    target_compile_options(${name} PRIVATE -g -O1 -fsanitize=fuzzer,address
                           -Wall -Wextra -Wno-unused-parameter)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer,address)
    set(corpus ${CMAKE_CURRENT_BINARY_DIR}/${name}_corpus)
    file(MAKE_DIRECTORY ${corpus})
    add_test(NAME ${name} COMMAND ${name} ${corpus} -max_total_time=60 ${ARGN})
    set_tests_properties(${name} PROPERTIES LABELS fuzz TIMEOUT 300)
  endfunction()
  # fuzz/image_seeds: tiny JPEGs/PNGs of each kind (PIL-made) to start from.
  mobilenet_fuzz(fuzz_image -rss_limit_mb=2048 -max_len=20000
                 ${CMAKE_CURRENT_LIST_DIR}/fuzz/image_seeds)
  # Also cross-checks the windowed COCO reader against the whole-file parse.
  mobilenet_fuzz(fuzz_coco -max_len=4096 -dict=${CMAKE_CURRENT_LIST_DIR}/fuzz/coco.dict)
  # Seeds its corpus with a valid checkpoint of a tiny model (the format of this build).
  mobilenet_fuzz(fuzz_checkpoint -max_len=32768)
endif()

# Fuzzing the image decoder and transform, and the COCO parser (libFuzzer, clang only). Included from
# tests/CMakeLists.txt. A short run is a CTest test labelled "fuzz"; longer runs by hand:
#   ./fuzz_image -max_total_time=600 fuzz_image_corpus
if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  add_executable(fuzz_image ${CMAKE_CURRENT_LIST_DIR}/fuzz/fuzz_image.cpp)
  target_link_libraries(fuzz_image PRIVATE mobilenet_data)
  target_compile_options(fuzz_image PRIVATE -g -O1 -fsanitize=fuzzer,address
                         -Wall -Wextra -Wno-unused-parameter)
  target_link_options(fuzz_image PRIVATE -fsanitize=fuzzer,address)
  # libFuzzer adds interesting inputs to the first corpus folder: give it a scratch one;
  # fuzz/image_seeds holds tiny JPEGs/PNGs of each kind (PIL-made) to start from.
  set(fuzz_corpus ${CMAKE_CURRENT_BINARY_DIR}/fuzz_image_corpus)
  file(MAKE_DIRECTORY ${fuzz_corpus})
  add_test(NAME fuzz_image
    COMMAND fuzz_image -max_total_time=30 -rss_limit_mb=2048 -max_len=20000 ${fuzz_corpus}
            ${CMAKE_CURRENT_LIST_DIR}/fuzz/image_seeds)
  set_tests_properties(fuzz_image PROPERTIES LABELS fuzz TIMEOUT 300)

  # COCO annotations: also cross-checks the windowed reader against the whole-file parse.
  add_executable(fuzz_coco ${CMAKE_CURRENT_LIST_DIR}/fuzz/fuzz_coco.cpp)
  target_link_libraries(fuzz_coco PRIVATE mobilenet_data)
  target_compile_options(fuzz_coco PRIVATE -g -O1 -fsanitize=fuzzer,address
                         -Wall -Wextra -Wno-unused-parameter)
  target_link_options(fuzz_coco PRIVATE -fsanitize=fuzzer,address)
  set(fuzz_coco_corpus ${CMAKE_CURRENT_BINARY_DIR}/fuzz_coco_corpus)
  file(MAKE_DIRECTORY ${fuzz_coco_corpus})
  add_test(NAME fuzz_coco
    COMMAND fuzz_coco -max_total_time=30 -max_len=4096
            -dict=${CMAKE_CURRENT_LIST_DIR}/fuzz/coco.dict ${fuzz_coco_corpus})
  set_tests_properties(fuzz_coco PROPERTIES LABELS fuzz TIMEOUT 300)
endif()

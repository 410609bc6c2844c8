# Fails unless README.md contains the consumer programs verbatim, so the README's usage
# examples are the programs the consumer tests compile and run.
file(READ ${SOURCE_DIR}/README.md readme)
foreach(program consumer_find_package/main.cpp consumer_trainer/main.cpp consumer_trainer/tag_images.cpp)
  file(READ ${SOURCE_DIR}/tests/${program} snippet)
  string(FIND "${readme}" "${snippet}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "README.md does not contain tests/${program} verbatim")
  endif()
endforeach()

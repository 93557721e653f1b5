// main of the seed generators (seeds.h): make_seeds DIR.
#include <filesystem>
#include <fstream>
#include <iostream>

#include "fuzz/seeds.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: " << argv[0] << " CORPUS_DIR\n";
    return 2;
  }
  int written = 0;
  for (const auto& [target, seeds] : raftkv::fuzz::MakeSeeds()) {
    const std::filesystem::path dir = std::filesystem::path(argv[1]) / target;
    std::filesystem::create_directories(dir);
    for (const auto& [name, bytes] : seeds) {
      std::ofstream f(dir / name, std::ios::binary | std::ios::trunc);
      f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      if (!f) {
        std::cerr << "cannot write " << (dir / name) << "\n";
        return 1;
      }
      ++written;
    }
  }
  std::cout << "wrote " << written << " seeds under " << argv[1] << "\n";
  return 0;
}

// The process/port/temp-dir helpers every integration test relies on.
#include <catch2/catch.hpp>

#include <fstream>

#include "support/process.hpp"
#include "support/temp_dir.hpp"

using namespace kl::testing;

TEST_CASE("TempDir is created and removed recursively", "[support]") {
  std::filesystem::path kept;
  {
    TempDir dir;
    kept = dir.path();
    REQUIRE(std::filesystem::is_directory(kept));
    std::filesystem::create_directories(kept / "a" / "b");
    std::ofstream(kept / "a" / "b" / "f.txt") << "x";
  }
  CHECK_FALSE(std::filesystem::exists(kept));
}

TEST_CASE("free_tcp_port gives a bindable port - wait_for_port times out on a closed one", "[support]") {
  const auto port = free_tcp_port();
  CHECK(port > 0);
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_FALSE(wait_for_port(port, std::chrono::milliseconds(200)));
  CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(200));
}

TEST_CASE("ChildProcess captures output and exit status", "[support]") {
  TempDir dir;
  ChildProcess p({"sh", "-c", "echo out; echo err >&2; echo $KL_X; exit 3"}, {{"KL_X", "from-env"}},
                 dir.path() / "log");
  CHECK(p.wait() == 3);
  CHECK_FALSE(p.running());
  CHECK(p.log() == "out\nerr\nfrom-env\n");
}

TEST_CASE("ChildProcess terminate stops a long-running child", "[support]") {
  TempDir dir;
  ChildProcess p({"sleep", "30"}, {}, dir.path() / "log");
  CHECK(p.running());
  const auto t0 = std::chrono::steady_clock::now();
  p.terminate();
  CHECK_FALSE(p.running());
  CHECK(p.wait() == 128 + 15);   // SIGTERM
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
}

TEST_CASE("ChildProcess and run_command reject a missing executable", "[support]") {
  TempDir dir;
  CHECK_THROWS_WITH(ChildProcess({"kl-no-such-program"}, {}, dir.path() / "log"),
                    Catch::Contains("not found in PATH"));
  const auto r = run_command({"sh", "-c", "printf abc; exit 7"});
  CHECK(r.status == 7);
  CHECK(r.output == "abc");
}

// TLS: a self-signed certificate made at test time with openssl; a client trusting it talks to the
// server, an insecure client does not; with a client CA, a client without a certificate is refused.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "tests/control/control_test_util.h"

namespace lockstep {
namespace {

namespace fs = std::filesystem;

class CoordinatorTls : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::system("command -v openssl > /dev/null 2>&1") != 0) GTEST_SKIP() << "no openssl binary";
    dir_ = fs::temp_directory_path() / ("lockstep-tls-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    cert_ = (dir_ / "cert.pem").string();
    key_ = (dir_ / "key.pem").string();
    const std::string cmd = "timeout 60 openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
                            "-addext subjectAltName=IP:127.0.0.1 -keyout " + key_ + " -out " + cert_ +
                            " > " + (dir_ / "openssl.log").string() + " 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << "openssl failed: see " << (dir_ / "openssl.log");
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  ServerOptions tls_server(const std::string& token) {
    ServerOptions o = testing::server_options(token);
    o.tls_cert = cert_;
    o.tls_key = key_;
    return o;
  }

  fs::path dir_;
  std::string cert_, key_;
};

TEST_F(CoordinatorTls, ClientWithCaWorksInsecureClientFails) {
  const std::string token = new_token();
  CoordinatorServer server(testing::small_job(), 1, tls_server(token));

  ClientOptions o = testing::client_options(server, token);
  o.tls_ca = cert_;
  CoordinatorClient secure(o);
  EXPECT_EQ(secure.control(proto::ControlRequest::STATUS).status().job(), "control-test");

  ClientOptions plain = testing::client_options(server, token);
  plain.rpc_deadline_s = 2;
  CoordinatorClient insecure(plain);
  try {
    insecure.control(proto::ControlRequest::EVAL);
    ADD_FAILURE() << "an insecure client reached a TLS coordinator";
  } catch (const RpcError& e) {
    EXPECT_NE(std::string(e.what()).find(server.address()), std::string::npos) << e.what();
  }
  EXPECT_EQ(server.status().pending_size(), 0) << "the insecure client's EVAL must not be queued";
}

TEST_F(CoordinatorTls, ClientCertificateRequiredWhenClientCaSet) {
  const std::string token = new_token();
  ServerOptions so = tls_server(token);
  so.tls_client_ca = cert_;  // self-signed: the certificate is its own CA
  CoordinatorServer server(testing::small_job(), 1, so);

  ClientOptions no_cert = testing::client_options(server, token);
  no_cert.tls_ca = cert_;
  no_cert.rpc_deadline_s = 2;
  EXPECT_THROW(CoordinatorClient(no_cert).control(proto::ControlRequest::STATUS), RpcError);

  ClientOptions with_cert = no_cert;
  with_cert.tls_cert = cert_;
  with_cert.tls_key = key_;
  EXPECT_EQ(CoordinatorClient(with_cert).control(proto::ControlRequest::STATUS).status().job(), "control-test");
}

TEST_F(CoordinatorTls, HalfConfiguredTlsIsAnError) {
  ServerOptions o = testing::server_options(new_token());
  o.tls_cert = cert_;
  EXPECT_THROW(CoordinatorServer(testing::small_job(), 1, o), Error);
  o.tls_key = (dir_ / "missing.pem").string();
  try {
    CoordinatorServer s(testing::small_job(), 1, o);
    ADD_FAILURE() << "a server started with a missing key file";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.pem"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lockstep

/**
 * A throwaway CA made with the openssl CLI, an independent implementation of
 * X.509 from the one under test, for agents started by integration tests.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { $ } from "zx";

export interface TestCa {
  dir: string;
  caFile: string;
  caKey: string;
}

export async function createTestCa(dir: string): Promise<TestCa> {
  await mkdir(dir, { recursive: true });
  const caFile = join(dir, "ca.pem");
  const caKey = join(dir, "ca-key.pem");
  await $({
    quiet: true,
  })`openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ${caKey} -out ${caFile} -days 2 -subj /CN=hashistack-test-ca -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign`;
  return { dir, caFile, caKey };
}

export interface IssuedCert {
  certFile: string;
  keyFile: string;
}

/** Issue a leaf for server and client auth with the given DNS and IP SANs. */
export async function issueTestCert(
  ca: TestCa,
  name: string,
  sans: { dns?: string[]; ips?: string[] },
  target?: IssuedCert,
): Promise<IssuedCert> {
  const certFile = target?.certFile ?? join(ca.dir, `${name}.pem`);
  const keyFile = target?.keyFile ?? join(ca.dir, `${name}-key.pem`);
  const csr = join(ca.dir, `${name}.csr`);
  const ext = join(ca.dir, `${name}.ext`);
  const altNames = [...(sans.dns ?? []).map((d) => `DNS:${d}`), ...(sans.ips ?? []).map((i) => `IP:${i}`)].join(",");
  await writeFile(
    ext,
    [
      "basicConstraints=CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      "extendedKeyUsage=serverAuth,clientAuth",
      ...(altNames ? [`subjectAltName=${altNames}`] : []),
    ].join("\n"),
  );
  await mkdir(join(certFile, ".."), { recursive: true });
  await mkdir(join(keyFile, ".."), { recursive: true });
  await $({
    quiet: true,
  })`openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ${keyFile} -out ${csr} -subj /CN=${name}`;
  await $({
    quiet: true,
  })`openssl x509 -req -in ${csr} -CA ${ca.caFile} -CAkey ${ca.caKey} -CAcreateserial -days 1 -extfile ${ext} -out ${certFile}`;
  return { certFile, keyFile };
}

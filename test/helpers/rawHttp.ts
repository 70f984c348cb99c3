import { connect } from "node:net";

export interface RawResponse {
  status: number;
  headers: string;
  body: string;
}

/** Sends bytes exactly as given (no client clean-up) and reads one response (after any 1xx; no body for HEAD). */
export async function rawRequest(url: string, request: string, timeoutMs = 5000): Promise<RawResponse> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) });
    let data = "";
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete response in ${timeoutMs} ms: ${JSON.stringify(data.slice(0, 200))}`));
    }, timeoutMs);
    const isHead = request.startsWith("HEAD ");
    const finish = (): void => {
      // Interim answers (100 Continue) come before the one this returns.
      while (/^HTTP\/1\.1 1\d\d /.test(data) && data.includes("\r\n\r\n")) data = data.slice(data.indexOf("\r\n\r\n") + 4);
      const end = data.indexOf("\r\n\r\n");
      if (end < 0) return;
      const head = data.slice(0, end);
      const length = /\r\ncontent-length: *(\d+)/i.exec(head);
      const body = data.slice(end + 4);
      if (!isHead && length !== null && Buffer.byteLength(body) < Number(length[1])) return;
      clearTimeout(timer);
      socket.destroy();
      resolve({ status: Number(head.slice(9, 12)), headers: head, body });
    };
    socket.on("data", (chunk: Buffer) => {
      data += chunk.toString("latin1");
      finish();
    });
    socket.on("end", finish);
    socket.on("error", (error) => {
      clearTimeout(timer);
      if (data.length > 0) finish();
      else reject(error);
    });
    socket.write(request, "latin1");
  });
}

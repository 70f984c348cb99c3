/** A refusal an operator can act on: its message is printed as is (exit 1), locally or from the gateway. */
export class OperationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "OperationError";
  }
}

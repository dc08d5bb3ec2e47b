// Tests read JSON responses loosely; the assertions check the shapes.
declare global {
  interface Response {
    json(): Promise<any>;
  }
}

export {};

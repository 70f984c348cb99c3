import type { Auth } from "../auth/createAuth.ts";
import type { Database } from "../db/openDatabase.ts";
import { createVerifiedUser } from "../auth/createUser.ts";
import type { DemoUpstream } from "./upstream.ts";
import { DEMO_USERS } from "./demoUsers.ts";

export { DEMO_USERS };


export async function seedDemo(auth: Auth, db: Database, upstream: DemoUpstream | null): Promise<Record<string, string>> {
  const ids: Record<string, string> = {};
  for (const user of DEMO_USERS) {
    const existing = await db.prisma.user.findUnique({ where: { email: user.email } });
    ids[user.email.split("@")[0] ?? user.role] = existing?.id ?? (await createVerifiedUser(auth, db.prisma, { ...user, attributes: "attributes" in user ? { ...user.attributes } : {} }));
  }
  const owner = ids.user ?? "";
  await upstream?.seed({
    shops: [
      { id: "shop_1", name: "Kebun Sari Organics", ownerId: owner, region: "eu" },
      { id: "shop_2", name: "Tani Makmur Seeds", ownerId: ids.admin ?? "", region: "apac" },
    ],
    products: [
      { id: "prd_1", shopId: "shop_1", name: "Organic shallots, 10 kg", priceCents: 2400 },
      { id: "prd_2", shopId: "shop_2", name: "Hybrid rice seed, 5 kg", priceCents: 5600 },
    ],
    orders: [
      { id: "ord_1", buyerId: owner, productId: "prd_2", quantity: 2, region: "eu", status: "pending", shippingAddress: "Jl. Merdeka 1, Bandung", notes: null },
      { id: "ord_2", buyerId: ids.admin ?? "", productId: "prd_1", quantity: 1, region: "apac", status: "shipped", shippingAddress: "1 Orchard Rd, Singapore", notes: null },
    ],
    inventory: [
      { productId: "prd_1", shopId: "shop_1", quantity: 120 },
      { productId: "prd_2", shopId: "shop_2", quantity: 40 },
    ],
  });
  return ids;
}

-- CreateTable
CREATE TABLE "shop" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "owner_id" TEXT NOT NULL,
    "region" TEXT,

    CONSTRAINT "shop_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "product" (
    "id" TEXT NOT NULL,
    "shop_id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "price_cents" INTEGER NOT NULL,

    CONSTRAINT "product_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "order" (
    "id" TEXT NOT NULL,
    "buyer_id" TEXT NOT NULL,
    "product_id" TEXT NOT NULL,
    "quantity" INTEGER NOT NULL,
    "region" TEXT,
    "status" TEXT NOT NULL,
    "shipping_address" TEXT,
    "notes" TEXT,

    CONSTRAINT "order_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "inventory" (
    "product_id" TEXT NOT NULL,
    "shop_id" TEXT NOT NULL,
    "quantity" INTEGER NOT NULL,

    CONSTRAINT "inventory_pkey" PRIMARY KEY ("product_id")
);

-- CreateIndex
CREATE INDEX "shop_owner_id_idx" ON "shop"("owner_id");

-- CreateIndex
CREATE INDEX "shop_region_idx" ON "shop"("region");

-- CreateIndex
CREATE INDEX "product_shop_id_idx" ON "product"("shop_id");

-- CreateIndex
CREATE INDEX "order_buyer_id_idx" ON "order"("buyer_id");

-- CreateIndex
CREATE INDEX "order_region_idx" ON "order"("region");

-- CreateIndex
CREATE INDEX "inventory_shop_id_idx" ON "inventory"("shop_id");

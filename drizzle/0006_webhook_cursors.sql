CREATE TABLE "webhook_cursors" (
	"endpoint_id" uuid NOT NULL,
	"conversation_id" uuid NOT NULL,
	"sequence" integer NOT NULL,
	"member_until" integer,
	"lease_until" timestamp with time zone,
	"lease_token" uuid,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "webhook_cursors_endpoint_id_conversation_id_pk" PRIMARY KEY("endpoint_id","conversation_id")
);
--> statement-breakpoint
DROP INDEX "webhook_deliveries_pending_idx";--> statement-breakpoint
ALTER TABLE "webhook_deliveries" ADD COLUMN "after_sequence" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "webhook_endpoints" ADD COLUMN "receives_since" timestamp with time zone DEFAULT now() NOT NULL;--> statement-breakpoint
ALTER TABLE "webhook_endpoints" ADD COLUMN "disabled_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "webhook_cursors" ADD CONSTRAINT "webhook_cursors_endpoint_id_webhook_endpoints_id_fk" FOREIGN KEY ("endpoint_id") REFERENCES "public"."webhook_endpoints"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "webhook_deliveries_pending_pair_idx" ON "webhook_deliveries" USING btree ("endpoint_id","conversation_id","after_sequence","position") WHERE status = 'pending';--> statement-breakpoint
UPDATE "webhook_deliveries" SET "after_sequence" = greatest(coalesce("sequence", 1) - 1, 0);--> statement-breakpoint
UPDATE "webhook_deliveries" SET "conversation_id" = '00000000-0000-0000-0000-000000000000' WHERE "conversation_id" IS NULL;--> statement-breakpoint
INSERT INTO "webhook_cursors" ("endpoint_id", "conversation_id", "sequence")
SELECT d."endpoint_id", d."conversation_id", coalesce(max(c."last_sequence"), 0)
  FROM "webhook_deliveries" d LEFT JOIN "conversations" c ON c."id" = d."conversation_id"
 WHERE d."status" = 'pending'
 GROUP BY d."endpoint_id", d."conversation_id"
ON CONFLICT DO NOTHING;
